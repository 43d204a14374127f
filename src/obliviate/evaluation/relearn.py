"""Relearn time: how many fine-tuning steps on the forget set bring its accuracy back."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.evaluation.accuracy import accuracy_of_logits
from obliviate.evaluation.predictions import model_device, predict_logits
from obliviate.training.loop import (
    check_finite,
    make_optimizer,
    seeded_generator,
    seeded_global_rng,
)

__all__ = ["relearn_time", "RELEARN_STREAM"]

#: Seed stream of the relearning batches (unique to :func:`relearn_time`).
RELEARN_STREAM = 9102


def relearn_time(
    model: nn.Module,
    forget: Dataset,
    *,
    target_accuracy: float,
    lr: float = 0.01,
    batch_size: int = 32,
    max_steps: int = 100,
    seed: int = 0,
) -> int:
    """Gradient steps of fine-tuning on ``forget`` until its accuracy reaches ``target_accuracy``.

    Relearn time (Golatkar et al. CVPR 2020, "Eternal Sunshine of the Spotless Net", Sec. 6:
    "the number of epochs needed to relearn" the forgotten data, a sign of information left in
    the weights; counted here in steps, since forget sets are small). A copy of ``model`` is
    trained with SGD (momentum 0.9, no weight decay, constant ``lr``) on
    ``CE(f(x_f), y_f)``; each step uses ``min(batch_size, |forget|)`` forget examples drawn
    without replacement, seeded by ``(seed, RELEARN_STREAM)``. Forget accuracy is measured
    (eval mode) before the first step and after each one. Returns the first step count at
    which it is ``>= target_accuracy`` (0 if it already is), or ``max_steps + 1`` if that is
    never reached within ``max_steps`` (the sentinel "not within budget"). ``model`` and the
    global random state are left unchanged. Lower is worse forgetting; compare with the
    retrained model's value. :func:`~obliviate.evaluation.evaluate` sets the target to the
    original model's forget accuracy.
    """
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(forget, Dataset):
        raise InvalidInputError(f"forget must be an obliviate Dataset, got {type(forget).__name__}.")
    if not 0.0 <= float(target_accuracy) <= 1.0:
        raise InvalidInputError(f"target_accuracy must be in [0, 1], got {target_accuracy}.")
    if not float(lr) > 0.0:
        raise InvalidInputError(f"lr must be > 0, got {lr}.")
    if int(batch_size) < 1 or int(max_steps) < 0:
        raise InvalidInputError(f"batch_size must be >= 1 and max_steps >= 0, got {batch_size} and {max_steps}.")
    work = copy.deepcopy(model)
    for p in work.parameters():
        p.requires_grad_(True)
    device = model_device(work)
    X, y = forget.tensors

    def reached() -> bool:
        return accuracy_of_logits(predict_logits(work, forget), forget.y) >= float(target_accuracy)

    if reached():
        return 0
    optimizer = make_optimizer("sgd", work.parameters(), lr=float(lr), momentum=0.9)
    generator = seeded_generator(seed, RELEARN_STREAM)
    take = min(int(batch_size), len(forget))
    with seeded_global_rng(seed):  # dropout, if any, draws from a seeded stream
        for step in range(1, int(max_steps) + 1):
            idx = torch.randperm(len(forget), generator=generator)[:take]
            work.train()
            loss = F.cross_entropy(work(X[idx].to(device)), y[idx].to(device))
            check_finite(loss, step=step, where="relearning", lr=float(lr))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if reached():
                return step
    return int(max_steps) + 1
