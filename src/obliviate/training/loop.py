"""The pieces every optimisation loop shares: optimisers, schedules, seeded batches, and the
divergence check. Trainer and unlearners both build on these, so a NaN is caught the same way
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from obliviate.errors import DivergedError, InvalidInputError
from obliviate.seeding import seeded_generator, seeded_global_rng  # re-exported: their old home
from obliviate.training.schedules import make_schedule

__all__ = [
    "seeded_global_rng",
    "make_optimizer",
    "make_scheduler",
    "minibatches",
    "num_batches",
    "check_finite",
    "seeded_generator",
    "FiniteWatch",
]


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


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step learning-rate schedule (:mod:`obliviate.training.schedules`: constant, cosine to zero, x0.1 at 50%
    and 75% (``step``), or linear to zero); the one schedule module the LM trainer uses too."""
    return make_schedule(name, optimizer, total_steps)


def num_batches(n: int, batch_size: int) -> int:
    """How many batches :func:`minibatches` yields for ``n`` examples: ceil(n / batch_size), except
    that a trailing batch of one example is merged into the one before it."""
    count = -(-int(n) // int(batch_size))
    return count - 1 if count > 1 and n % batch_size == 1 else count


def minibatches(
    n: int, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors covering ``range(n)`` once, in a seeded random order when ``shuffle``.

    A trailing batch of a single example is merged into the previous batch: BatchNorm cannot
    normalise one example in training mode (ResNet-18 on 8x8 inputs would fail whenever
    ``n % batch_size == 1``), and a one-example step is mostly noise anyway.
    """
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    count = num_batches(n, batch_size)
    for b in range(count):
        stop = n if b == count - 1 else (b + 1) * batch_size
        yield order[b * batch_size : stop]


def check_finite(loss: torch.Tensor, *, step: int, where: str, lr: float | None = None) -> None:
    """Raise :class:`DivergedError` when ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise DivergedError(where, step, float(loss.detach().reshape(-1)[0]), lr)


class FiniteWatch:
    """The divergence check of :func:`check_finite`, batched: one host sync every ``every`` steps.

    ``watch(loss, step)`` keeps the detached (scalar) loss; every ``every`` losses (and at :meth:`flush`)
    they are stacked and tested at once, and the first non-finite one raises :class:`DivergedError`
    naming *its* step and value, exactly as a per-step :func:`check_finite` would have. Between
    checks a diverged run may take up to ``every - 1`` further steps on its non-finite weights;
    they are thrown away with the run, so the error (step, value) and a finite run's weights are
    the same as with a check at every step. Call :meth:`flush` when the loop ends.
    """

    def __init__(self, *, where: str, lr: float | None = None, every: int = 32) -> None:
        if every < 1:
            raise InvalidInputError(f"every must be >= 1, got {every}.")
        self.where, self.lr, self.every = where, lr, int(every)
        self._steps: list[int] = []
        self._losses: list[torch.Tensor] = []

    def __call__(self, loss: torch.Tensor, step: int) -> None:
        self._steps.append(step)
        self._losses.append(loss.detach())
        if len(self._losses) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Check the losses kept since the last check; raise :class:`DivergedError` at the first non-finite one."""
        if not self._losses:
            return
        values = torch.stack(self._losses)
        steps, self._steps, self._losses = self._steps, [], []
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0])
            raise DivergedError(self.where, steps[first], float(values[first]), self.lr)
