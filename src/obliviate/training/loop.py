"""The pieces every optimisation loop shares: optimisers, schedules, seeded batches, and the
divergence check. Trainer and unlearners both build on these, so a NaN is caught the same way
everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch

from obliviate.errors import DivergedError, InvalidInputError

__all__ = ["make_optimizer", "make_scheduler", "minibatches", "check_finite", "seeded_generator"]


def seeded_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A torch CPU generator for ``(seed, stream)``: independent streams from one seed."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(stream) * 7919) % (2**63 - 1))
    return g


def make_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam, by name."""
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise InvalidInputError(f"optimizer must be 'sgd' or 'adam', got {name!r}.")


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step learning-rate schedule: constant, cosine to zero, or x0.1 at 50% and 75%."""
    total = max(1, int(total_steps))
    if name == "constant":
        factor = lambda step: 1.0  # noqa: E731
    elif name == "cosine":
        factor = lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    elif name == "step":
        factor = lambda step: 0.1 ** ((step >= total // 2) + (step >= (3 * total) // 4))  # noqa: E731
    else:
        raise InvalidInputError(f"schedule must be constant, cosine or step, got {name!r}.")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def minibatches(
    n: int, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors covering ``range(n)`` once, in a seeded random order when ``shuffle``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def check_finite(loss: torch.Tensor, *, step: int, where: str, lr: float | None = None) -> None:
    """Raise :class:`DivergedError` when ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise DivergedError(where, step, float(loss.detach().reshape(-1)[0]), lr)
