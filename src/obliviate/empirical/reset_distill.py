"""Re-initialise (part of) every layer from the run's seed, then distil the original into it on D_r.

The idea several leading entries of the NeurIPS 2023 unlearning competition share (Triantafillou
et al. 2024, "Are we making progress in unlearning? Findings from the first NeurIPS unlearning
competition", arXiv 2406.09073, Sec. 5): destroy what the weights hold by re-initialising them, and
rebuild the network from the retain set with the original as a teacher, so the rebuilt model
matches the original where the retain data speaks and behaves like a fresh model on the forget set.
The 6th-place Euclid/Athena team describes its entry as "weight resetting and distillation"; the
8th-place entry (Ahn et al., "stochastic re-initialization" then a "knowledge preserving" loss to
the original's outputs on D_r) re-initialises randomly chosen parts of the network.

Here: each entry of every parametrised layer is replaced, with probability ``reset``, by the
corresponding entry of a fresh ``reset_parameters()`` draw (both the choice and the draw seeded by
the run's seed; ``reset`` 1 is a full re-initialisation); then SGD (momentum, weight decay, cosine
schedule) on ``alpha * KL(softmax(t/T) || softmax(s/T)) T^2 + (1 - alpha) * CE(s, y)`` over D_r
batches, ``t`` the original's logits (eval mode), ``s`` the student's (Hinton et al. 2015, Eq. 2 and
the ``T^2`` factor; :func:`~obliviate.empirical.scrub.distill_kl`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.empirical.reset_layers import fresh_layers, init_seed
from obliviate.empirical.scrub import distill_kl
from obliviate.errors import InvalidInputError
from obliviate.models import parametrised_layers
from obliviate.training.loop import make_optimizer, num_batches
from obliviate.unlearning.base import Learner, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["ResetDistill", "stochastic_reset"]

_STREAM = 4351  # entry choice 4351, fresh draw 4352, batch order 4353


@torch.no_grad()
def stochastic_reset(model: nn.Module, share: float, task: UnlearnTask) -> None:
    """Each parameter entry of each parametrised layer takes a fresh ``reset_parameters()`` value with
    probability ``share`` (a Bernoulli choice per entry from the run's stream); BatchNorm running
    statistics are reset when ``share`` is 1."""
    layers = parametrised_layers(model)
    choose = task.generator(_STREAM)
    for (_, layer), fresh in zip(layers, fresh_layers(layers, init_seed(task, _STREAM + 1)), strict=True):
        for p, q in zip(layer.parameters(), fresh.parameters(), strict=True):
            if share >= 1.0:
                p.copy_(q)
            else:
                pick = torch.rand(p.shape, generator=choose) < share
                p.copy_(torch.where(pick, q, p))
        if share >= 1.0:
            for b, q in zip(layer.buffers(), fresh.buffers(), strict=True):
                b.copy_(q)


@register
class ResetDistill(Unlearner):
    """Stochastic re-initialisation, then distillation from the original on D_r (see the module docstring).

    No published values. Defaults: chosen on the validation protocol of ``benchmarks/nips_search.py``
    (digits MLP, challenge protocol with 64 models a side, a forget draw, original and seeds the
    scoreboard does not use; the best final score within 10% of retraining's gradient work), by
    ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_search.py --models 64 --draws 1 --grid round1
    --methods reset_distill``:
    60% of entries re-drawn, alpha 0.9, T 4, 3 epochs at lr 0.05 (validation score 0.045 against the
    split-half reference's 0.182).
    The robust protocol (3 draws of forget set, original and seeds; ``--draws 3 --grid robust``) chose the
    same values: mean validation score 0.0568 (sd 0.0142 over the draws); see RESULTS.md, ``nips-leaders``.
    """

    name = "reset_distill"
    summary = "re-initialise (part of) every layer, then distil the original on the retain set"

    @dataclass(frozen=True)
    class Config:
        reset: float = 0.6
        alpha: float = 0.9
        temperature: float = 4.0
        epochs: int = 3
        lr: float = 0.05
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 64

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if not 0.0 <= c.reset <= 1.0:
            raise InvalidInputError(
                f"reset_distill.reset must be in [0, 1] (share of entries re-initialised), got {c.reset}."
            )
        if not 0.0 <= c.alpha <= 1.0:
            raise InvalidInputError(
                f"reset_distill.alpha must be in [0, 1] (weight of the distillation term), got {c.alpha}."
            )
        if c.temperature <= 0:
            raise InvalidInputError(f"reset_distill.temperature must be > 0, got {c.temperature}.")

    def loop(self, learner: Learner) -> None:
        c = self.config
        learner.each(lambda model, task: stochastic_reset(model, c.reset, task))
        optimizer = make_optimizer(
            "sgd", learner.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        total = max(1, c.epochs * num_batches(len(learner.retain), c.batch_size))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
        )
        generator = learner.generator(_STREAM + 2)

        def objective(model: Any, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            logits = model(x)
            return c.alpha * distill_kl(logits, target, c.temperature) + (1.0 - c.alpha) * F.cross_entropy(logits, y)

        for _ in range(c.epochs):
            for x, y in learner.batches("retain", c.batch_size, generator=generator):
                learner.loss(objective, x, y, learner.teacher(x))
                learner.step(optimizer, batch=y.shape[-1])
                schedule.step()
