"""Layers of a stack of ``M`` models of one architecture, evaluated as a few large operations.

A stack holds each parameter as one tensor ``[M, ...]`` (model ``m``'s at index ``m``). Run through
``vmap``, a Linear layer becomes ``M`` small matrix products in the row-major layout ``x W^T``; for a
10-class head on a batch of 64 that is a ``64 x 64 x 10`` product per model, which the CPU's batched
GEMM runs at a fifth of the speed of the transposed ``W x^T`` (``10 x 64 x 64``; measured in
``benchmarks/nips_speed_probe.py``). The functions here keep activations *feature-major*
(``h[M, features, batch]``): a Linear layer is ``W_m h_m + b_m``, one ``baddbmm`` over the stack, and
the logits come out classes-first, the layout the cross-entropy wants (``training.many.cross_entropy``).
A stack of convolutions is ONE convolution with ``groups = M`` over the channel-concatenated models
(channels-last, so oneDNN runs it without the layout conversions of a plain NCHW convolution).

Each function computes, for every ``m``, what the corresponding ``nn`` layer computes with model
``m``'s parameters, up to float rounding (a different summation order in the matrix products).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["linear_fm", "conv2d_grouped", "max_pool2d_grouped", "models_in"]


def models_in(params: dict[str, torch.Tensor]) -> int:
    """The number of models ``M`` of stacked ``params`` (every tensor is ``[M, ...]``)."""
    return next(iter(params.values())).shape[0]


def linear_fm(weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """``nn.Linear`` of every model on feature-major activations.

    ``weight[M, out, in]``, ``bias[M, out]``; ``h[M, in, b]`` (each model its own inputs) or ``[in, b]``
    (the same inputs for every model: one ``(M out) x in`` by ``in x b`` product). Returns ``[M, out, b]``
    with ``out[m] = weight[m] @ h[m] + bias[m][:, None]``.
    """
    if h.dim() == 2:
        out = torch.matmul(weight, h)  # [M, out, in] @ [in, b]: folded into one matrix product
        return out if bias is None else out + bias.unsqueeze(-1)
    if bias is None:
        return torch.bmm(weight, h)
    return torch.baddbmm(bias.unsqueeze(-1), weight, h)


def conv2d_grouped(
    conv: nn.Conv2d,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    h: torch.Tensor,
    models: int,
    *,
    shared: bool = False,
) -> torch.Tensor:
    """``conv`` of every model as one convolution over the models' concatenated channels.

    ``weight[M, out, in/groups, k, k]``; ``h[b, M in, H, W]`` (model ``m``'s channels at
    ``m in .. (m+1) in - 1``), or, with ``shared``, ``h[b, in, H, W]`` read by every model (one
    ungrouped convolution with ``M out`` filters). Returns ``[b, M out, H', W']`` in the same channel
    order, channels-last.
    """
    w = weight.reshape(models * weight.shape[1], *weight.shape[2:]).contiguous(memory_format=torch.channels_last)
    groups = conv.groups if shared else conv.groups * models
    return F.conv2d(h, w, None if bias is None else bias.reshape(-1), conv.stride, conv.padding, conv.dilation, groups)


def max_pool2d_grouped(pool: nn.MaxPool2d, h: torch.Tensor) -> torch.Tensor:
    """``pool`` on the channel-concatenated models (pooling is per channel, so it is every model's pool)."""
    return F.max_pool2d(h, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)
