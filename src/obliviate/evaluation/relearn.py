"""Relearn time: how long fine-tuning takes to bring the forget set back.

Two readouts:

- :func:`relearn_epochs`, the readout of the literature (Golatkar et al. CVPR 2020, "Eternal
  Sunshine of the Spotless Net", Sec. 6; the SCRUB code, meghdadk/SCRUB
  ``large_scale_unlearning.ipynb``: ``readout_retrain`` and ``all_readouts``): plain SGD on small
  epochs drawn from the FULL training set (forget included) until the forget-set LOSS is back at
  the original model's, counted in epochs.
- :func:`forget_relearn_steps`, obliviate's earlier readout: fine-tuning on the forget set only
  until its ACCURACY is back at a target, counted in steps. It measures something else (how fast
  the forget set alone is refitted) and is kept under this name only.
"""

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

__all__ = [
    "relearn_epochs",
    "relearn_target",
    "forget_loss",
    "forget_relearn_steps",
    "RELEARN_STREAM",
    "RELEARN_EPOCH_STREAM",
    "LOSS_MARGIN",
]

#: Seed stream of :func:`forget_relearn_steps`'s batches (unique to it).
RELEARN_STREAM = 9102
#: Seed stream of :func:`relearn_epochs`'s draws from the training set (unique to it).
RELEARN_EPOCH_STREAM = 9103
#: The reference's tolerance on the target loss: ``thresh = log_dict['Original_Model_D_f_loss'] + 1e-5``.
LOSS_MARGIN = 1e-5


def forget_loss(model: nn.Module, forget: Dataset) -> float:
    """Mean cross-entropy of ``model`` (eval mode) over ``forget``: the notebook's ``D_f`` loss."""
    logits = torch.as_tensor(predict_logits(model, forget), dtype=torch.float32)
    return float(F.cross_entropy(logits, torch.as_tensor(forget.y, dtype=torch.long)))


def relearn_target(original: nn.Module, forget: Dataset) -> float:
    """The loss :func:`relearn_epochs` relearns to: the original model's forget loss ``+ 1e-5``."""
    return forget_loss(original, forget) + LOSS_MARGIN


def relearn_epochs(
    model: nn.Module,
    forget: Dataset,
    train: Dataset,
    *,
    target_loss: float,
    lr: float = 0.01,
    epoch_size: int = 500,
    batch_size: int = 128,
    weight_decay: float = 5e-4,
    max_epochs: int = 100,
    seed: int = 0,
) -> int:
    """Epochs of fine-tuning on the full training set until the forget loss is ``<= target_loss``.

    The relearn-time readout of Golatkar et al. 2020 (Sec. 6) as the SCRUB code computes it
    (``large_scale_unlearning.ipynb``: ``all_readouts`` calls ``readout_retrain(model,
    train_loader_full, forget_loader, epochs=100, lr=0.01, threshold=thresh)`` with ``thresh`` the
    original model's forget loss + 1e-5, :func:`relearn_target`). On a copy of ``model``::

        for epoch in 0 .. max_epochs - 1:
            if mean CE over forget <= target_loss: return epoch
            one epoch: epoch_size examples drawn uniformly WITH replacement from train
                       (RandomSampler(replacement=True, num_samples=500)), in batches of
                       batch_size (the last one shorter), each a plain SGD step (lr, no momentum)
                       on CE + weight_decay / 2 * ||theta - theta_start||^2
        return max_epochs + 1

    ``train`` is the full training set, forget examples included (``train_loader_full``). As
    the reference's ``run_train_epoch``, the model stays in eval mode while it is fine-tuned
    (BatchNorm uses and keeps its running statistics, dropout is off), and the penalty pulls
    towards the weights relearning started from (``l2_penalty(model, model_init, weight_decay)``
    with SCRUB ``main.py``'s default ``--weight-decay 0.0005``). Draws are seeded by ``(seed,
    RELEARN_EPOCH_STREAM)``.

    Returns the number of epochs trained before the forget loss reached the target (0 if it
    already had), as the reference's returned ``epoch``; the notebook prints that plus 1.
    Never reached within ``max_epochs``: ``max_epochs + 1`` (the reference returns its last
    index there, which cannot be told from reaching it in the last epoch). Lower is worse
    forgetting; compare with the retrained model's value. ``model`` and the global random state
    are left unchanged.
    """
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    for name, d in (("forget", forget), ("train", train)):
        if not isinstance(d, Dataset):
            raise InvalidInputError(f"{name} must be an obliviate Dataset, got {type(d).__name__}.")
    if len(train) == 0 or len(forget) == 0:
        raise InvalidInputError("relearn_epochs needs a non-empty forget set and training set.")
    if not float(lr) > 0.0 or float(weight_decay) < 0.0:
        raise InvalidInputError(f"lr must be > 0 and weight_decay >= 0, got {lr} and {weight_decay}.")
    for name, value in (("epoch_size", epoch_size), ("batch_size", batch_size), ("max_epochs", max_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")
    work = copy.deepcopy(model).eval()
    for p in work.parameters():
        p.requires_grad_(True)
    start = [p.detach().clone() for p in work.parameters()]
    device = model_device(work)
    X, y = train.tensors
    optimizer = make_optimizer("sgd", work.parameters(), lr=float(lr))
    generator = seeded_generator(seed, RELEARN_EPOCH_STREAM)
    with seeded_global_rng(seed):
        for epoch in range(int(max_epochs)):
            if forget_loss(work, forget) <= float(target_loss):
                return epoch
            draw = torch.randint(len(train), (int(epoch_size),), generator=generator)
            for b in range(0, int(epoch_size), int(batch_size)):
                idx = draw[b : b + int(batch_size)]
                loss = F.cross_entropy(work(X[idx].to(device)), y[idx].to(device))
                penalty = sum(((p - p0) ** 2).sum() for p, p0 in zip(work.parameters(), start, strict=True))
                total = loss + 0.5 * float(weight_decay) * penalty
                check_finite(total, step=epoch, where="relearning", lr=float(lr))
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
    return int(max_epochs) + 1


def forget_relearn_steps(
    model: nn.Module,
    forget: Dataset,
    *,
    target_accuracy: float,
    lr: float = 0.01,
    batch_size: int = 32,
    max_steps: int = 100,
    seed: int = 0,
) -> int:
    """Gradient steps of fine-tuning on ``forget`` ONLY until its accuracy reaches ``target_accuracy``.

    obliviate's earlier relearn readout, kept under this name (the literature's relearn time is
    :func:`relearn_epochs`). A copy of ``model`` is trained with SGD (momentum 0.9, no weight
    decay, constant ``lr``) on ``CE(f(x_f), y_f)``; each step uses ``min(batch_size, |forget|)``
    forget examples drawn without replacement, seeded by ``(seed, RELEARN_STREAM)``. Forget
    accuracy is measured (eval mode) before the first step and after each one. Returns the first
    step count at which it is ``>= target_accuracy`` (0 if it already is), or ``max_steps + 1``
    if that is never reached within ``max_steps``. ``model`` and the global random state are left
    unchanged.
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
