"""Selective Synaptic Dampening (SSD): dampen the parameters the forget set relies on far more than D does.

Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without Retraining Through Selective
Synaptic Dampening", AAAI 2024 (reference code: if-loops/selective-synaptic-dampening, ``ssd.py``,
``ParameterPerturber.calc_importance`` and ``modify_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.empirical._gradients import full_training_batches, mean_batch_gradients
from obliviate.errors import InvalidInputError
from obliviate.unlearning.base import Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["SSD", "ssd_importance", "dampen"]

_STREAM = 4101  # SSD reads its batches in order; the generator is required by the API, never drawn from


def ssd_importance(model: nn.Module, task: UnlearnTask, *, batch_size: int) -> tuple[dict, dict]:
    """``([]_Df, []_D)``: the mean over batches of the squared CE gradient on D_f and on D = D_r + D_f.

    As ``calc_importance``: unshuffled batches, ``imp += grad**2`` per batch, divided by the
    number of batches (so a short last batch weighs as much as a full one). Batches are
    obliviate's ``minibatches``, which fold a trailing one-example batch into the one before it
    (the reference's DataLoader would keep it).
    """
    gen = task.generator(_STREAM)
    forget = mean_batch_gradients(
        model, task, task.batches("forget", batch_size, generator=gen, shuffle=False), transform=torch.square
    )
    full = mean_batch_gradients(model, task, full_training_batches(task, batch_size), transform=torch.square)
    return forget, full


@torch.no_grad()
def dampen(model: nn.Module, imp_forget: dict, imp_full: dict, *, alpha: float, lam: float) -> int:
    """SSD's selection and dampening, in place: where ``[]_Df > alpha []_D``, ``theta *= min(lam []_D / []_Df, 1)``.

    Returns how many parameter entries were selected. Entries with ``[]_Df = 0`` are never
    selected (``0 > alpha * x`` is false for ``x >= 0``), so the ratio is always defined.
    """
    selected = 0
    for name, p in model.named_parameters():
        if name not in imp_forget:
            continue
        f, d = imp_forget[name], imp_full[name]
        where = f > alpha * d
        beta = torch.clamp(lam * d[where] / f[where], max=1.0)
        p[where] = p[where] * beta
        selected += int(where.sum())
    return selected


@register
class SSD(Unlearner):
    """Selective Synaptic Dampening: no gradient steps, one importance pass over D_f and one over D.

    Importance of parameter i on a set S is the diagonal Fisher estimate
    ``[]_S,i = (1/B) sum_b (d CE_b / d theta_i)^2`` over the ``B`` minibatches of S (the paper's
    Fisher importance, with the reference code's batch averaging). Selection: parameters with
    ``[]_Df,i > alpha []_D,i``. Dampening: ``theta_i <- beta_i theta_i`` with
    ``beta_i = min(lambda []_D,i / []_Df,i, 1)``. D is the full training set, D_r then D_f,
    batched without shuffling as in the reference's ``full_train_dl``. ``lam`` is the paper's
    lambda (``lambda`` is reserved in Python).

    Defaults: lambda = 1 is the paper's. The paper's alpha = 10 and batch 128 were set where the
    forget set is a small share s = |D_f|/|D| of the data (one class of CIFAR-100 or CIFAR-20,
    the reference's ``*_fullclass_exps.sh``). With per-example importances ``[]_D >= s []_Df``,
    so the ratio that selection compares with alpha is at most 1/s: a digits class has
    s ~ 0.1, and alpha = 10 then selects only what batch noise pushes over the bound (at
    batch 128 the 7-example last forget batch dominates ``[]_Df`` and most of the network is
    dampened). The digits defaults are alpha = 5 (below 1/s) and batch 8 (17 forget batches,
    close to the per-example Fisher), which forget class 3 to the oracle's accuracy at about a
    fifth of retraining's cost. SSD stays brittle at this scale: with these values some classes
    (1 and 5 of digits) are not forgotten at all.
    """

    name = "ssd"
    summary = "dampen parameters far more important to the forget set than to the training set (no training)"

    @dataclass(frozen=True)
    class Config:
        alpha: float = 5.0
        lam: float = 1.0
        batch_size: int = 8

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if c.alpha <= 0:
            raise InvalidInputError(f"ssd.alpha must be > 0 (the paper searches 0.1 to 100), got {c.alpha}.")
        if c.lam <= 0:
            raise InvalidInputError(f"ssd.lam must be > 0 (the paper searches 0.1 to 5), got {c.lam}.")

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        imp_forget, imp_full = ssd_importance(model, task, batch_size=self.config.batch_size)
        dampen(model, imp_forget, imp_full, alpha=self.config.alpha, lam=self.config.lam)
        return model
