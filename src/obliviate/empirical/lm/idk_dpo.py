"""IdkDPO: Direct Preference Optimization with an "I don't know" answer preferred to the true one.

Rafailov et al., "Direct Preference Optimization", NeurIPS 2023, Eq. (7):
``L = -E[log sigmoid(beta log(pi(y_w|x)/pi_ref(y_w|x)) - beta log(pi(y_l|x)/pi_ref(y_l|x)))]``;
as TOFU's IdkDPO (Maini et al. 2024; open-unlearning ``dpo.py`` with ``compute_dpo_loss``, scaled
by ``2/beta``): ``y_w`` a refusal drawn from the IDK bank, ``y_l`` the true forget answer, plus
``alpha`` times the retain NLL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.empirical.lm.base import Batch, LMUnlearnTask, PairedLMUnlearner
from obliviate.empirical.lm.npo import NPO
from obliviate.lm.batches import network_of, sequence_nll
from obliviate.unlearning.registry import register

__all__ = ["IdkDPO", "dpo_loss"]


def dpo_loss(
    nll_win: torch.Tensor,
    nll_win_reference: torch.Tensor,
    nll_lose: torch.Tensor,
    nll_lose_reference: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """``mean_b -(2/beta) logsigmoid(beta * ((NLL_ref_w - NLL_w) - (NLL_ref_l - NLL_l)))``.

    ``log pi(y|x) - log pi_ref(y|x) = NLL_ref_sum - NLL_sum`` for each of the winning and losing answers.
    """
    win = nll_win_reference - nll_win
    lose = nll_lose_reference - nll_lose
    return (-(2.0 / beta) * F.logsigmoid(beta * (win - lose))).mean()


@register
class IdkDPO(PairedLMUnlearner):
    """IdkDPO: ``gamma * L_DPO(y_w = IDK, y_l = answer) + alpha * NLL_retain``; beta 0.1 (published).

    Published (``Config``): lr 1e-5, gamma = alpha = 1 for Llama-2-7b. ``tiny-gpt``: lr 1e-3
    (tiny authors bench). ``llama`` (SmolLM2): see ``family_defaults``.
    The refusals come from the task's ``idk_answers`` (the benchmark's bank, else a built-in one),
    one drawn per item and pass with the run's seed.
    """

    name = "idk_dpo"
    summary = "language models: DPO preferring 'I don't know' over the true answer"
    forget_answers = ("answer", "idk")
    stream = 550

    @dataclass(frozen=True)
    class Config(NPO.Config):
        lr: float = 1e-5
        alpha: float = 1.0

    family_defaults = {"tiny-gpt": {"lr": 1e-3}, "llama": {"lr": 1e-4}}

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        reference = network_of(task.original)
        with torch.no_grad():
            ref_win, _ = sequence_nll(reference, forget["idk"])
            ref_lose, _ = sequence_nll(reference, forget["answer"])
        win, _ = sequence_nll(net, forget["idk"])
        lose, _ = sequence_nll(net, forget["answer"])
        return dpo_loss(win, ref_win, lose, ref_lose, self.config.beta)
