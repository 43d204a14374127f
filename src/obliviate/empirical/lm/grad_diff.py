"""Gradient difference: ascend the forget NLL while descending the retain NLL.

Liu et al., "Continual Learning and Private Unlearning", CoLLAs 2022; TOFU's "Grad. Diff."
(Maini et al. 2024, Sec. 4); open-unlearning ``src/trainer/unlearn/grad_diff.py``:
``loss = gamma * (-NLL(forget)) + alpha * NLL(retain)`` (or ``KL`` to the original on retain).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.empirical.lm.base import Batch, LMUnlearnTask, PairedLMUnlearner, mean_token_nll
from obliviate.unlearning.registry import register

__all__ = ["GradDiff"]


@register
class GradDiff(PairedLMUnlearner):
    """GradDiff: ``gamma * (-NLL_forget) + alpha * NLL_retain`` with gamma = alpha = 1 (open-unlearning).

    Published (``Config``): AdamW lr 1e-5, 10 epochs for Llama-2-7b. ``tiny-gpt``: lr 3e-4 (1e-5
    does not move the GPT trained from scratch at 3e-3; measured on the tiny authors bench,
    forget10). ``llama`` (SmolLM2): see ``family_defaults``.
    """

    name = "grad_diff"
    summary = "language models: ascend forget NLL, descend retain NLL"
    stream = 520

    @dataclass(frozen=True)
    class Config(PairedLMUnlearner.Config):
        lr: float = 1e-5

    family_defaults = {"tiny-gpt": {"lr": 3e-4}, "llama": {"lr": 5e-5}}

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        return -mean_token_nll(net, forget["answer"])
