"""Multi-layer perceptron: Linear -> ReLU blocks, then a linear classifier head."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from obliviate.models.stacked import linear_fm


class MLP(nn.Sequential):
    """``Flatten -> [Linear(d_i, d_{i+1}) -> ReLU]* -> Linear(d_last, classes)``."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (128, 64)) -> None:
        dims = [math.prod(input_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], num_classes))
        super().__init__(*layers)

    def stacked_forward(
        self, params: Mapping[str, torch.Tensor], x: torch.Tensor, *, shared: bool = False
    ) -> torch.Tensor:
        """Logits ``[M, b, classes]`` of ``M`` models of this architecture at once.

        ``params[name]: [M, ...]`` (this module's parameter names); ``x[M, b, ...]``, model ``m`` on
        ``x[m]``, or with ``shared`` ``x[b, ...]`` for every model. ``out[m]`` equals this module's
        forward with model ``m``'s parameters up to float rounding. Activations are feature-major
        (:mod:`obliviate.models.stacked`); the result is a transposed view of ``[M, classes, b]``.
        """
        h = x.reshape(x.shape[0], -1).t() if shared else x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        for name, layer in self.named_children():
            if isinstance(layer, nn.Linear):
                h = linear_fm(params[f"{name}.weight"], params.get(f"{name}.bias"), h)
            elif isinstance(layer, nn.ReLU):
                h = torch.relu(h)
            elif not isinstance(layer, nn.Flatten):
                raise TypeError(f"MLP.stacked_forward has no stacked form of {type(layer).__name__}")
        return h.transpose(1, 2)
