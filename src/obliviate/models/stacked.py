"""Layers of a stack of ``M`` models of one architecture, evaluated as a few large operations.

A stack holds each parameter as one tensor ``[M, ...]`` (model ``m``'s at index ``m``). Run through
``vmap``, a Linear layer becomes ``M`` small matrix products in the row-major layout ``x W^T``; for a
10-class head on a batch of 64 that is a ``64 x 64 x 10`` product per model, which the CPU's batched
GEMM runs 2.5-5x slower than the transposed ``W x^T`` (``10 x 64 x 64``; measured in
``benchmarks/nips_speed_probe.py``). The functions here keep activations *feature-major*
(``h[M, features, batch]``): a Linear layer is ``W_m h_m + b_m``, one ``baddbmm`` over the stack, and
the logits come out classes-first, the layout the cross-entropy wants (``training.many.cross_entropy``).
A stack of convolutions is ONE convolution with ``groups = M`` over the channel-concatenated models
(channels-last, so oneDNN runs it without the layout conversions of a plain NCHW convolution).

Each function computes, for every ``m``, what the corresponding ``nn`` layer computes with model
``m``'s parameters, up to float rounding (a different summation order in the matrix products).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "linear_fm",
    "linear_relu_chain",
    "linear_relu_forward",
    "linear_relu_backward",
    "conv2d_grouped",
    "max_pool2d_grouped",
    "models_in",
]


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


def linear_relu_chain(h: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
    """``Linear -> ReLU -> ... -> Linear`` of every model, feature-major, as one autograd node.

    ``h[M, in, b]`` or ``[in, b]`` (shared), ``layers`` the ``(weight[M, out, in], bias[M, out] or
    None)`` pairs in order; ReLU between consecutive layers, none after the last. The value is
    :func:`linear_fm` and ``relu`` in turn (:func:`linear_relu_forward`); its backward is
    :func:`linear_relu_backward`.
    """
    flat: list[torch.Tensor | None] = [t for pair in layers for t in pair]
    return _LinearReluChain.apply(h, len(layers), *flat)


def linear_relu_forward(
    h: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor | None]]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The chain's output ``[M, out, b]`` and each layer's input (what the backward pass reads)."""
    inputs = []
    for i, (weight, bias) in enumerate(layers):
        inputs.append(h)
        h = linear_fm(weight, bias, h)
        if i < len(layers) - 1:
            h = h.relu_() if not torch.is_grad_enabled() else torch.relu(h)  # a fresh tensor: in place is safe
    return h, inputs


def linear_relu_backward(
    g: torch.Tensor,
    inputs: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    *,
    need_input: bool = False,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor | None]:
    """The chain's gradients from the upstream gradient ``g[M, out, b]`` of its output.

    For the layer ``z = W h + b`` with upstream ``g``: ``dW = g h^T``, ``db = sum_b g``, and below
    it ``dh = W^T g`` masked by ``h > 0`` (ReLU's derivative, read from its output ``h``, the next
    layer's input). Returns ``[(dW, db) per layer]`` and, with ``need_input``, the chain input's
    gradient (summed over the models for a shared ``[in, b]`` input).
    """
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for i in range(len(weights) - 1, -1, -1):
        h = inputs[i]
        out.append((torch.matmul(g, h.transpose(-1, -2)), g.sum(-1)))
        if i == 0:
            break
        g = torch.ops.aten.threshold_backward(torch.bmm(weights[i].transpose(1, 2), g), h, 0)
    g_input = None
    if need_input:
        g_input = torch.matmul(weights[0].transpose(1, 2), g)
        if inputs[0].dim() == 2:
            g_input = g_input.sum(0)
    return out[::-1], g_input


class _LinearReluChain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, n: int, *flat: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        layers = [(flat[2 * i], flat[2 * i + 1]) for i in range(n)]
        out, inputs = linear_relu_forward(h, layers)  # type: ignore[arg-type]
        ctx.n = n
        ctx.save_for_backward(*inputs, *(w for w, _ in layers))
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        n = ctx.n
        saved = ctx.saved_tensors
        grads, g_input = linear_relu_backward(g.contiguous(), saved[:n], saved[n:], need_input=ctx.needs_input_grad[0])
        flat = [
            t for i, pair in enumerate(grads) for t in (pair[0], pair[1] if ctx.needs_input_grad[3 + 2 * i] else None)
        ]
        return (g_input, None, *flat)
