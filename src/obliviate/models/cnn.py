"""A small convolutional network for 8x8 digits up to 32x32 colour images."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.models.stacked import conv2d_grouped, linear_fm, max_pool2d_grouped, models_in


def image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)`` for an image input; a flat square vector (digits' 64) becomes 1 x 8 x 8."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        return (1, side, side)
    raise InvalidInputError(
        f"a convolutional model needs C x H x W images or a flat square vector; got input shape {shape}. "
        "Use model='mlp' for tabular data."
    )


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks (conv -> ReLU -> conv -> ReLU -> 2x2 max-pool), then a 2-layer head."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 32) -> None:
        super().__init__()
        c, h, w = image_shape(input_shape)
        self.input_chw = (c, h, w)
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = 2 * width * (h // 4) * (w // 4)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):  # noqa: D401 - standard forward
        return self.classifier(self.features(x.reshape(x.shape[0], *self.input_chw)))

    def stacked_forward(
        self, params: Mapping[str, torch.Tensor], x: torch.Tensor, *, shared: bool = False
    ) -> torch.Tensor:
        """Logits ``[M, b, classes]`` of ``M`` models of this architecture at once.

        ``params[name]: [M, ...]``; ``x[M, b, ...]`` (model ``m`` on ``x[m]``) or, with ``shared``,
        ``x[b, ...]`` for every model. The convolutions run as one grouped convolution over the
        models' concatenated channels (``groups = M``; the first one, on shared inputs, ungrouped
        with ``M x width`` filters), channels-last; the head is feature-major
        (:mod:`obliviate.models.stacked`). ``out[m]`` equals :meth:`forward` with model ``m``'s
        parameters up to float rounding.
        """
        m = models_in(params)
        c, hh, ww = self.input_chw
        if shared:
            h = x.reshape(x.shape[0], c, hh, ww)
        else:  # [M, b, c, H, W] -> [b, M c, H, W]: model m's channels side by side
            h = x.reshape(m, x.shape[1], c, hh, ww).transpose(0, 1).reshape(x.shape[1], m * c, hh, ww)
        h = h.contiguous(memory_format=torch.channels_last)
        first = True
        for name, layer in self.features.named_children():
            if isinstance(layer, nn.Conv2d):
                key = f"features.{name}"
                h = conv2d_grouped(
                    layer, params[f"{key}.weight"], params.get(f"{key}.bias"), h, m, shared=shared and first
                )
                first = False
            elif isinstance(layer, nn.ReLU):
                h = torch.relu(h)
            elif isinstance(layer, nn.MaxPool2d):
                h = max_pool2d_grouped(layer, h)
            else:
                raise InvalidInputError(
                    f"SmallCNN.stacked_forward has no stacked form of {type(layer).__name__}; "
                    "set obliviate.training.many.STACKED_FORWARD = False to train it through vmap"
                )
        b = h.shape[0]
        h = h.reshape(b, m, -1).permute(1, 2, 0)  # [M, C H W, b]: each model's features in Flatten's order
        for name, layer in self.classifier.named_children():
            if isinstance(layer, nn.Linear):
                key = f"classifier.{name}"
                h = linear_fm(params[f"{key}.weight"], params.get(f"{key}.bias"), h)
            elif isinstance(layer, nn.ReLU):
                h = torch.relu(h)
            elif not isinstance(layer, nn.Flatten):
                raise InvalidInputError(
                    f"SmallCNN.stacked_forward has no stacked form of {type(layer).__name__}; "
                    "set obliviate.training.many.STACKED_FORWARD = False to train it through vmap"
                )
        return h.transpose(1, 2)
