"""Gradient statistics over a dataset and score-based weight masks, shared by the weight-editing methods.

SSD (squared-gradient importances), SalUn (forget-loss saliency) and reinit_finetune (forget and
retain gradients) all average a per-batch function of the cross-entropy gradient over one pass of
a set, evaluated at fixed weights; SalUn, prune_finetune and reinit_finetune all keep the ``k``
highest-scoring entries over *all* selected tensors at once (one global threshold, as SalUn's
``generate_mask.py`` and ``torch.nn.utils.prune.global_unstructured`` do). Both live here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.training.loop import minibatches
from obliviate.unlearning.base import UnlearnTask

__all__ = ["mean_batch_gradients", "full_training_batches", "top_k_mask", "mask_share"]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def mean_batch_gradients(
    model: nn.Module,
    task: UnlearnTask,
    batches: Batches,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """``(1/B) sum_b transform(grad_theta CE_b)`` per named parameter, over the ``B`` batches given.

    ``CE_b`` is the batch-mean cross-entropy at the model's current weights (no step is taken);
    ``transform`` defaults to the identity (``torch.square`` gives SSD's importances). Each batch
    is one gradient evaluation counted by :meth:`UnlearnTask.backward`. The model is evaluated in
    eval mode, as SSD's and SalUn's reference code do, and is left with no ``.grad``.
    """
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    totals = {name: torch.zeros_like(p) for name, p in params}
    was_training = model.training
    model.eval()
    count = 0
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        task.backward(F.cross_entropy(model(x), y), batch=len(y))
        for name, p in params:
            if p.grad is not None:
                totals[name] += p.grad if transform is None else transform(p.grad)
        count += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {name: t / max(count, 1) for name, t in totals.items()}


def full_training_batches(task: UnlearnTask, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Unshuffled batches over D = D_r followed by D_f (SSD's ``ConcatDataset((retain, forget))``)."""
    Xr, yr = task.retain.tensors
    Xf, yf = task.forget.tensors
    X, y = torch.cat([Xr, Xf]), torch.cat([yr, yf])
    task.record_read(task.retain)
    task.record_read(task.forget)
    for idx in minibatches(len(y), batch_size, shuffle=False):
        yield X[idx], y[idx]


def top_k_mask(scores: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """0/1 masks (float, shaped like each score) with ones at the ``k`` largest scores over all tensors.

    One global ranking (a stable sort, so ties go to the earlier entry in parameter order) rather
    than a per-tensor one; exactly ``k`` ones in total.
    """
    flat = torch.cat([s.detach().reshape(-1) for s in scores.values()])
    k = max(0, min(int(k), flat.numel()))
    order = torch.argsort(flat, descending=True, stable=True)
    chosen = torch.zeros(flat.numel(), dtype=torch.float32)
    chosen[order[:k]] = 1.0
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = chosen[start : start + s.numel()].reshape(s.shape).to(s.dtype)
        start += s.numel()
    return masks


def mask_share(masks: dict[str, torch.Tensor]) -> float:
    """Fraction of entries set to one across all masks."""
    total = sum(m.numel() for m in masks.values())
    return float(sum(m.sum() for m in masks.values()) / max(total, 1))
