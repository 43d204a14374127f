"""Multi-layer perceptron: Linear -> ReLU blocks, then a linear classifier head."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """``Flatten -> [Linear(d_i, d_{i+1}) -> ReLU]* -> Linear(d_last, classes)``."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (128, 64)) -> None:
        dims = [math.prod(input_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], num_classes))
        super().__init__(*layers)
