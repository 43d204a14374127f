"""A small convolutional network for 8x8 digits up to 32x32 colour images."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from obliviate.errors import InvalidInputError


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
