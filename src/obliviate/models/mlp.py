"""Multi-layer perceptron: Linear -> ReLU blocks, then a linear classifier head."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.models.stacked import linear_relu_backward, linear_relu_chain, linear_relu_forward


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
        names = self._linear_names()
        h = x.reshape(x.shape[0], -1).t() if shared else x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        return linear_relu_chain(h, [(params[f"{n}.weight"], params.get(f"{n}.bias")) for n in names]).transpose(1, 2)

    def stacked_vjp(
        self, params: Mapping[str, torch.Tensor], x: torch.Tensor
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
        """:meth:`stacked_forward` on per-model inputs without autograd, and its backward pass.

        Returns the logits ``[M, b, classes]`` and ``backward(g)``: the gradient of a function of the
        logits with respect to every parameter (``{name: [M, ...]}``), given its gradient ``g`` with
        respect to the logits (:func:`~obliviate.models.stacked.linear_relu_backward`).
        """
        names = self._linear_names()
        layers = [(params[f"{n}.weight"].detach(), _detached(params.get(f"{n}.bias"))) for n in names]
        h = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        with torch.no_grad():
            out, inputs = linear_relu_forward(h, layers)

        def backward(g: torch.Tensor) -> dict[str, torch.Tensor]:
            with torch.no_grad():
                grads, _ = linear_relu_backward(g.transpose(1, 2), inputs, [w for w, _ in layers])
            result = {}
            for n, (gw, gb) in zip(names, grads, strict=True):
                result[f"{n}.weight"] = gw
                if f"{n}.bias" in params:
                    result[f"{n}.bias"] = gb
            return result

        return out.transpose(1, 2), backward

    def _linear_names(self) -> list[str]:
        """The Linear layers' names, checked to be ``Linear (-> ReLU -> Linear)*`` after the Flatten."""
        kinds = [(name, type(layer)) for name, layer in self.named_children()]
        body = [k for _, k in kinds if k is not nn.Flatten]
        if body[::2] != [nn.Linear] * len(body[::2]) or body[1::2] != [nn.ReLU] * len(body[1::2]) or len(body) % 2 == 0:
            raise InvalidInputError(
                "MLP.stacked_forward needs Linear layers with one ReLU between each two; "
                "train this module with ob.train or set obliviate.training.many.STACKED_FORWARD = False"
            )
        return [name for name, k in kinds if k is nn.Linear]


def _detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()
