"""Add Gaussian noise to the first layer's weights, then fine-tune on D_r with class-balanced CE.

The third entry of the NeurIPS 2023 unlearning competition ("Seif"; Triantafillou et al. 2024,
"Are we making progress in unlearning? Findings from the first NeurIPS unlearning competition",
arXiv 2406.09073, Sec. 5 and App. C), as re-implemented beside the other top-7 entries (the
``munl`` package, class ``KGLTop3``, ``vision_confuser``):

1. ``W <- W + N(0, sigma_start^2)`` elementwise on the chosen weights (the reference's
   ``vision_confuser`` walks ``named_children()`` for names containing "conv", which on a
   torchvision ResNet-18 is the stem ``conv1`` only: the first layer);
2. ``epochs`` epochs of SGD (momentum 0.9, weight decay 5e-4) on the class-weighted loss
   ``CE_mean(f(x_r), y_r) * mean_b w_{y_b}`` (the reference's ``CustomCrossEntropyLoss``: the
   batch-mean cross-entropy times the batch's mean class weight, ``w_c = n / (K n_c)``, sklearn's
   "balanced"), the learning rate on a per-epoch cosine schedule (``CosineAnnealingLR(T_max=epochs)``);
3. before the last epoch, noise again at ``sigma_final``.

Published: sigma_start 0.6, sigma_final 0.005, 4 epochs, lr 7e-4, batch 64. ``layers`` (default 1)
picks how many of the first parametrised layers' weights get the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.models import parametrised_layers
from obliviate.training.loop import make_optimizer
from obliviate.unlearning.base import Learner, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["NoiseFinetune", "add_weight_noise", "balanced_class_weights"]

_STREAM = 4331  # first noise 4331, last-epoch noise 4332, fine-tuning order 4333


def add_weight_noise(model: nn.Module, layers: int, std: float, generator: torch.Generator) -> None:
    """``W <- W + N(0, std^2)`` on the ``weight`` of the first ``layers`` parametrised layers."""
    with torch.no_grad():
        for _, layer in parametrised_layers(model)[:layers]:
            w = getattr(layer, "weight", None)
            if isinstance(w, torch.Tensor):
                w.add_(torch.randn(w.shape, generator=generator, dtype=w.dtype) * std)


def balanced_class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """``w_c = n / (K n_c)`` over the classes present (sklearn's ``compute_class_weight("balanced")``); 0 elsewhere."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


@register
class NoiseFinetune(Unlearner):
    """Seif's noise-then-fine-tune (equations in the module docstring).

    Defaults: chosen on the validation protocol of ``benchmarks/nips_search.py`` (digits MLP, challenge
    protocol with 64 models a side, a forget draw, original and seeds the scoreboard does not use; the
    best final score within 10% of retraining's gradient work), by
    ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_search.py --models 64 --draws 1 --grid round1``
    and ``--grid round2``:
    std 0.1
    on the first layer, 3 epochs at lr 0.1, final_std 0.005 as published (validation score 0.088
    against the split-half reference's 0.182; the published std 0.6 scored at most 0.016).
    The robust protocol (3 draws of forget set, original and seeds; ``--draws 3 --grid robust``) chose the
    same values: mean validation score 0.0853 (sd 0.0051 over the draws); see RESULTS.md, ``nips-leaders``.
    """

    name = "noise_finetune"
    summary = "Gaussian noise on the first layer's weights, then class-balanced fine-tuning (NeurIPS'23 3rd)"

    @dataclass(frozen=True)
    class Config:
        std: float = 0.1
        final_std: float = 0.005
        layers: int = 1
        epochs: int = 3
        lr: float = 0.1
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 64

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if c.std < 0 or c.final_std < 0:
            raise InvalidInputError(f"noise_finetune.std and final_std must be >= 0, got {c.std}, {c.final_std}.")
        if c.layers < 1:
            raise InvalidInputError(f"noise_finetune.layers must be >= 1 (first layers to perturb), got {c.layers}.")

    def loop(self, learner: Learner) -> None:
        c = self.config

        def noise(stream: int, std: float):
            def apply(model: nn.Module, task: UnlearnTask) -> None:
                add_weight_noise(model, c.layers, std, task.generator(stream))

            return apply

        learner.each(noise(_STREAM, c.std))
        weights = balanced_class_weights(learner.retain.y, learner.retain.num_classes)
        optimizer = make_optimizer(
            "sgd", learner.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        generator = learner.generator(_STREAM + 2)

        def weighted_ce(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x), y) * weights[y].mean()

        for epoch in range(c.epochs):
            for group in optimizer.param_groups:
                group["lr"] = c.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / c.epochs))
            for x, y in learner.batches("retain", c.batch_size, generator=generator):
                learner.loss(weighted_ce, x, y)
                learner.step(optimizer, batch=y.shape[-1])
            if epoch == c.epochs - 2:
                learner.each(noise(_STREAM + 1, c.final_std))
