"""Push the forget outputs to uniform, then alternate a forget-vs-retain contrastive round and a retain round.

The winning entry of the NeurIPS 2023 unlearning competition ("Fanchuan"; Triantafillou et al.
2024, "Are we making progress in unlearning? Findings from the first NeurIPS unlearning
competition", arXiv 2406.09073, Sec. 5 and App. C). Its code as re-implemented beside the other
top-7 entries (the ``munl`` package, class ``KGLTop1``):

1. one pass over D_f minimising ``KL(u || softmax(f(x_f)))`` with ``u`` the uniform distribution
   over classes (``nn.KLDivLoss(batchmean)(log_softmax(f(x_f)), u)``), SGD lr 0.005, momentum 0.9;
2. ``epochs`` times: a *forget round*, each forget batch paired with a retain batch, minimising
   ``-mean_{i,j} log softmax_j(f(x_f,i) . f(x_r,j) / T)`` (the retain logits detached; the
   log-softmax over the retain batch, so each forget example is pulled to be equally similar to
   every retain example), SGD lr 3e-4 with a cosine schedule to 1e-6 over all forget steps; then
   a *retain round*, one pass of ``CE(f(x_r), y_r)``, SGD lr 0.001 x batch/64, weight decay 1e-2.

Published: 8 epochs, batch 256, T = 1.15, retain lr 0.004. obliviate's defaults differ where the
validation protocol chose otherwise (see :class:`UniformContrast`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from obliviate.errors import InvalidInputError
from obliviate.training.loop import make_optimizer, num_batches
from obliviate.unlearning.base import Learner, Unlearner
from obliviate.unlearning.registry import register

__all__ = ["UniformContrast", "uniform_kl", "contrast_loss"]

_STREAM = 4311  # stage-1 forget order; +1 forget-round forget order, +2 forget-round retain order, +3 retain rounds


def uniform_kl(logits: torch.Tensor) -> torch.Tensor:
    """``KL(u || softmax(z))`` batch-averaged, ``u`` uniform: ``sum_c u_c (log u_c - log p_c) / B``."""
    k = logits.shape[-1]
    u = torch.full_like(logits, 1.0 / k)
    return F.kl_div(F.log_softmax(logits, dim=-1), u, reduction="batchmean")


def contrast_loss(forget_logits: torch.Tensor, retain_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``-mean_{i,j} log softmax_j(z_f,i . z_r,j / T)`` with the retain logits ``z_r`` detached."""
    sims = forget_logits @ retain_logits.detach().T / temperature
    return -F.log_softmax(sims, dim=-1).mean()


@register
class UniformContrast(Unlearner):
    """Fanchuan's two stages (see the module docstring for the equations and the published values).

    Settings: ``epochs`` of stage 2, ``batch_size`` for every loader, ``temperature`` T;
    ``uniform_lr`` (stage 1), ``forget_lr`` (forget rounds, cosine to ``eta_min``) and ``retain_lr``
    (retain rounds, the published 0.001 x 256/64 = 0.004) with their own SGD optimisers, as the
    reference keeps three. ``retain_weight_decay`` 1e-2 as published.

    Defaults: chosen on the validation protocol of ``benchmarks/nips_search.py`` (digits MLP, challenge
    protocol with 64 models a side, a forget draw, original and seeds the scoreboard does not use; the
    best final score among configurations within 10% of retraining's gradient work), by
    ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_search.py --models 64 --draws 1 --grid round1``
    and ``--grid round2``:
    1 epoch (8 would cost 35% of retraining here), batch 64, retain lr 0.1, forget lr 3e-3 (validation
    score 0.028 against the split-half reference's 0.182; forget lr 3e-4 as published, with retain lr
    0.05, scored 0.009).
    The robust protocol (3 draws of forget set, original and seeds; ``--draws 3 --grid robust``) chose the
    same values: mean validation score 0.0314 (sd 0.0089 over the draws); see RESULTS.md, ``nips-leaders``.
    """

    name = "uniform_contrast"
    summary = "forget outputs to uniform, then forget-vs-retain contrastive and retain CE rounds (NeurIPS'23 1st)"

    @dataclass(frozen=True)
    class Config:
        epochs: int = 1
        batch_size: int = 64
        temperature: float = 1.15
        uniform_lr: float = 0.005
        forget_lr: float = 3e-3
        retain_lr: float = 0.1
        momentum: float = 0.9
        retain_weight_decay: float = 1e-2
        eta_min: float = 1e-6

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        for key in ("temperature", "uniform_lr", "forget_lr", "retain_lr"):
            if getattr(c, key) <= 0:
                raise InvalidInputError(f"uniform_contrast.{key} must be > 0, got {getattr(c, key)}.")
        if c.epochs < 0 or c.retain_weight_decay < 0 or c.eta_min < 0:
            raise InvalidInputError("uniform_contrast.epochs, retain_weight_decay and eta_min must be >= 0.")

    def loop(self, learner: Learner) -> None:
        c = self.config
        params = learner.parameters()
        stage1 = make_optimizer("sgd", params, lr=c.uniform_lr, momentum=c.momentum)
        forget_opt = make_optimizer("sgd", params, lr=c.forget_lr, momentum=c.momentum)
        retain_opt = make_optimizer(
            "sgd", params, lr=c.retain_lr, momentum=c.momentum, weight_decay=c.retain_weight_decay
        )
        per_epoch = min(num_batches(len(learner.forget), c.batch_size), num_batches(len(learner.retain), c.batch_size))
        total = max(1, per_epoch * c.epochs)
        floor = c.eta_min / c.forget_lr
        schedule = torch.optim.lr_scheduler.LambdaLR(
            forget_opt, lambda s: floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * s / total))
        )

        def to_uniform(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return uniform_kl(model(x))

        def contrast(model: Any, xf: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
            return contrast_loss(model(xf), model(xr), c.temperature)

        def retain_ce(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x), y)

        for x, y in learner.batches("forget", c.batch_size, generator=learner.generator(_STREAM)):
            learner.loss(to_uniform, x, y)
            learner.step(stage1, batch=y.shape[-1])
        gen_f, gen_rf, gen_r = (learner.generator(_STREAM + k) for k in (1, 2, 3))
        for _ in range(c.epochs):
            pairs = zip(
                learner.batches("forget", c.batch_size, generator=gen_f),
                learner.batches("retain", c.batch_size, generator=gen_rf),
            )
            for (xf, yf), (xr, yr) in pairs:
                learner.loss(contrast, xf, xr)
                learner.step(forget_opt, batch=yf.shape[-1] + yr.shape[-1])
                schedule.step()
            for x, y in learner.batches("retain", c.batch_size, generator=gen_r):
                learner.loss(retain_ce, x, y)
                learner.step(retain_opt, batch=y.shape[-1])
