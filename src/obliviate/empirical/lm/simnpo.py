"""SimNPO: NPO without a reference model, on the length-normalised NLL.

Fan, Liu, Lin, Jia, Zhang, Mei, Liu, "Simplicity Prevails: Rethinking Negative Preference
Optimization for LLM Unlearning", 2024, Eq. (4): ``L = -(2/beta) E[log sigmoid(-(beta/|y|)
log pi_theta(y|x) - delta)]``; open-unlearning ``simnpo.py`` writes it as
``-(2/beta) * logsigmoid(beta * (NLL_sum/|y| - delta))``, which is what is implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.empirical.lm.base import Batch, LMUnlearnTask, PairedLMUnlearner
from obliviate.lm.batches import sequence_nll
from obliviate.unlearning.registry import register

__all__ = ["SimNPO", "simnpo_loss"]


def simnpo_loss(nll: torch.Tensor, length: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """``mean_b -(2/beta) * logsigmoid(beta * (NLL_sum[b] / |y_b| - delta))`` (Fan et al. 2024, Eq. 4)."""
    return (-(2.0 / beta) * F.logsigmoid(beta * (nll / length.clamp_min(1) - delta))).mean()


@register
class SimNPO(PairedLMUnlearner):
    """SimNPO: ``gamma * L_SimNPO + alpha * NLL_retain``; beta 4.5, delta 0, gamma 0.125 (published, TOFU).

    Published (``Config``): lr 1e-5 for Llama-2-7b. ``tiny-gpt``: lr 3e-3 (tiny authors bench:
    gamma 0.125 makes the forget term weak, 1e-3 left forget quality at the target's).
    ``llama`` (SmolLM2): see ``family_defaults``.
    """

    name = "simnpo"
    summary = "language models: reference-free, length-normalised NPO"
    stream = 540

    @dataclass(frozen=True)
    class Config(PairedLMUnlearner.Config):
        lr: float = 1e-5
        gamma: float = 0.125
        beta: float = 4.5
        delta: float = 0.0

    family_defaults = {"tiny-gpt": {"lr": 3e-3}, "llama": {"lr": 1e-4}}

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        nll, length = sequence_nll(net, forget["answer"])
        return simnpo_loss(nll, length, self.config.beta, self.config.delta)
