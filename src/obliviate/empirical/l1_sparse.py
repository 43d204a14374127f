"""l1-sparse: fine-tune on the retain set with an l1 penalty whose weight decays to zero.

Jia, Liu, Ram, Yao, Liu, Liu, Sharma and Liu, "Model Sparsity Can Simplify Machine Unlearning",
NeurIPS 2023 (Sec. 4, Eq. 4, "sparsity-aware unlearning"): ``min_theta L_r(theta) + gamma_t ||theta||_1``
with a linearly decreasing ``gamma_t``; code OPTML-Group/Unlearn-Sparse ``optim/unlearn/FT.py``
(``FT_l1``, run as ``--unlearn FT_prune``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from obliviate.empirical.finetune import FinetunePlanned, FinetuneSettings
from obliviate.errors import InvalidInputError
from obliviate.unlearning.base import UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["L1Sparse", "l1_norm", "l1_schedule"]


def l1_norm(model: nn.Module | Iterable[torch.Tensor]) -> torch.Tensor:
    """``||theta||_1`` over every parameter, biases included (the reference's ``l1_regularization``).

    ``model`` is a module or its list of parameter tensors (one model of a stack).
    """
    params = model.parameters() if isinstance(model, nn.Module) else model
    return torch.cat([p.reshape(-1) for p in params]).abs().sum()


def l1_schedule(gamma: float, epoch: int, epochs: int, no_l1_epochs: int = 0) -> float:
    """``gamma_t = gamma * (1 - t / (E - E_0))`` for (0-based) epoch ``t < E - E_0``, else 0.

    ``E`` = ``epochs``, ``E_0`` = ``no_l1_epochs`` (final epochs of plain fine-tuning), as in
    ``FT_iter``: ``current_alpha = alpha * (1 - epoch / (unlearn_epochs - no_l1_epochs))``. The
    penalty always acts in the first epoch: with ``E_0 >= E`` the active span is one epoch (the
    reference falls back to a constant ``alpha`` when ``E - E_0 = 0``).
    """
    active = max(1, epochs - no_l1_epochs)
    return gamma * (1.0 - epoch / active) if epoch < active else 0.0


@register
class L1Sparse(FinetunePlanned):
    """l1-sparse (Jia et al. NeurIPS 2023): ``CE(f(x_r), y_r) + gamma_t * ||theta||_1`` on D_r.

    ``gamma_t`` decays linearly from ``gamma`` in the first epoch towards 0 (:func:`l1_schedule`).
    Published settings: 10 epochs, lr 0.01, ``no_l1_epochs`` 0 (Unlearn-Sparse README and
    ``arg_parser.py``); ``gamma`` (``--alpha``) 1e-4 in the OPTML group's SalUn scripts for the
    l1-sparse baseline (SVHN, CelebA-HQ), searched per task in the paper. Those values are for
    ResNets with millions of weights; on the digits MLP (17k weights) 1e-4 does not move a
    class at all, so the defaults are chosen on the digits bench (see the project's benchmark
    notes): gamma 1e-2 decaying over the first 2 of 4 epochs (``no_l1_epochs`` 2: the last two are
    plain fine-tuning that repairs the retain set), lr 0.06. The fine-tuning loop is the shared
    one (:func:`~obliviate.empirical.finetune.retain_finetune`: SGD, momentum 0.9, weight decay
    5e-4, cosine schedule).
    """

    name = "l1_sparse"
    summary = "fine-tune on the retain set with a linearly decaying l1 penalty on the weights"

    @dataclass(frozen=True)
    class Config(FinetuneSettings):
        gamma: float = 1e-2
        no_l1_epochs: int = 2
        epochs: int = 4
        lr: float = 0.06

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if c.gamma < 0:
            raise InvalidInputError(f"l1_sparse.gamma must be >= 0, got {c.gamma}.")
        if c.no_l1_epochs < 0:
            raise InvalidInputError(f"l1_sparse.no_l1_epochs must be >= 0, got {c.no_l1_epochs}.")

    def penalty(self, params: list[torch.Tensor], epoch: int) -> torch.Tensor:
        """``gamma_t * ||theta||_1`` in (0-based) ``epoch``."""
        c = self.config
        return l1_schedule(c.gamma, epoch, c.epochs, c.no_l1_epochs) * l1_norm(params)

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict:
        return {**self.config.loop(), "stream": 250, "penalty": self.penalty}
