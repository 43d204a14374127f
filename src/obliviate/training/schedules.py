"""Learning-rate schedules, one place for the classifier trainer, LM fine-tuning and LM unlearning.

:func:`schedule_factor` returns the multiplier of the base learning rate at each optimiser step
(``torch.optim.lr_scheduler.LambdaLR`` calls it with the number of steps taken so far):

- ``constant``: 1;
- ``cosine``: 0.5 (1 + cos(pi t / T)), to zero at the last step (Loshchilov & Hutter, SGDR, ICLR 2017, eq. 5
  with a single cycle and eta_min = 0);
- ``step``: x0.1 at 50% and again at 75% of the steps;
- ``linear``: decays linearly to zero at T, from the end of the warm-up: (T - t) / (T - W).

A warm-up of W steps replaces the first W factors by a linear ramp (t + 1) / W, so the first step
already moves the weights and step W - 1 uses the full rate. ``linear`` with a warm-up is
Hugging Face's ``get_linear_schedule_with_warmup`` (``transformers.optimization``:
``t / max(1, W)`` while t < W, then ``max(0, (T - t) / max(1, T - W))``) with the ramp counted
from step 1 instead of 0 (there, the first step runs at learning rate 0). Without a warm-up each
schedule is exactly its formula above.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from obliviate.errors import InvalidInputError

__all__ = ["SCHEDULE_NAMES", "schedule_factor", "make_schedule"]

SCHEDULE_NAMES = ("constant", "cosine", "step", "linear")


def schedule_factor(name: str, total_steps: int, *, warmup_steps: int = 0) -> Callable[[int], float]:
    """The learning-rate multiplier at step t (0-based) of a ``total_steps`` run with ``warmup_steps`` of warm-up."""
    total = max(1, int(total_steps))
    warmup = max(0, min(int(warmup_steps), total))
    if name == "constant":

        def after(step: int) -> float:
            return 1.0

    elif name == "cosine":

        def after(step: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    elif name == "step":

        def after(step: int) -> float:
            return 0.1 ** ((step >= total // 2) + (step >= (3 * total) // 4))

    elif name == "linear":

        def after(step: int) -> float:
            return max(0.0, (total - step) / max(1, total - warmup))

    else:
        raise InvalidInputError(f"schedule must be one of {', '.join(SCHEDULE_NAMES)}, got {name!r}.")
    if not warmup:
        return after

    def factor(step: int) -> float:
        return (step + 1) / warmup if step < warmup else after(step)

    return factor


def make_schedule(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, *, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` over :func:`schedule_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(name, total_steps, warmup_steps=warmup_steps))
