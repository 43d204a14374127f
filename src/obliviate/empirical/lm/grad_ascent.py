"""Gradient ascent on the forget set's answer NLL (the TOFU "GA" baseline).

Maini et al., "TOFU: A Task of Fictitious Unlearning for LLMs", 2024 (Sec. 4, Gradient Ascent);
open-unlearning ``src/trainer/unlearn/grad_ascent.py``: ``loss = -NLL(forget)``, the batch's
mean answer-token NLL. No retain term: it is unbounded and collapses the model if run long.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.empirical.lm.base import Batch, LMConfig, LMUnlearnTask, PairedLMUnlearner, mean_token_nll
from obliviate.unlearning.registry import register

__all__ = ["LMGradAscent"]


@register
class LMGradAscent(PairedLMUnlearner):
    """GradAscent (TOFU): ``loss = -mean token NLL`` of the forget answers.

    Published (``Config``; open-unlearning TOFU, Llama-2-7b): AdamW lr 1e-5, 10 epochs, effective
    batch 32. ``tiny-gpt`` (measured on the tiny authors bench): lr 2e-4 for 5 epochs (the GPT
    trained from scratch at 3e-3 does not move at 1e-5 and collapses at 5e-4). ``llama``
    (SmolLM2; a starting value, not searched): see ``family_defaults``.
    """

    name = "lm_grad_ascent"
    summary = "language models: ascend the forget answers' NLL"
    stream = 510

    @dataclass(frozen=True)
    class Config(LMConfig):
        epochs: int = 10
        lr: float = 1e-5

    family_defaults = {"tiny-gpt": {"epochs": 5, "lr": 2e-4}, "llama": {"lr": 5e-5}}

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        return -mean_token_nll(net, forget["answer"])
