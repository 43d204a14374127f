"""UNDIAL: self-distillation towards the original's logits with the true token's logit lowered.

Dong, Lin, Belkin, Huerta, Vulic, "UNDIAL: Self-Distillation with Adjusted Logits for Robust
Unlearning in Large Language Models", NAACL 2025 (arXiv 2402.10052), Sec. 3, Eq. (2)-(3): the
teacher is the frozen original; its logits at each forget token are adjusted
``z'_t = z_t - beta * onehot(y_t)`` and the student minimises ``CE(softmax(z'_t), p_theta(. | x, y_<t))``.
Because the targets come from a fixed teacher, the loss is bounded (no collapse as with ascent).
open-unlearning ``compute_undial_loss`` averages over every position (its ``-100`` labels index
the vocabulary from the end); here only answer tokens are distilled, the tokens to unlearn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.empirical.lm.base import Batch, LMUnlearnTask, PairedLMUnlearner
from obliviate.lm.batches import IGNORE_INDEX, network_of
from obliviate.unlearning.registry import register

__all__ = ["UNDIAL", "undial_targets", "undial_loss"]


def undial_targets(teacher_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """``softmax(z - beta * onehot(y))`` over the vocabulary, for logits [N, V] and labels [N]."""
    adjusted = teacher_logits.float() - beta * F.one_hot(labels, teacher_logits.shape[-1]).float()
    return F.softmax(adjusted, dim=-1)


def undial_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over the answer tokens of ``CE(undial_targets, student)``; logits [B, L, V], labels [B, L]
    (unshifted, ``-100`` off the answer)."""
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    soft = undial_targets(teacher_logits[:, :-1][mask], target[mask], beta)
    return F.cross_entropy(student_logits[:, :-1][mask].float(), soft)


@register
class UNDIAL(PairedLMUnlearner):
    """UNDIAL: ``gamma * CE(student, softmax(teacher - beta onehot(y)))``, no retain term by default.

    Published (``Config``; paper and open-unlearning ``configs/trainer/UNDIAL.yaml``): beta 10,
    gamma 1, alpha 0, lr 1e-4 (LoRA on Llama-2-7b), 10 epochs. ``tiny-gpt``: the retain NLL
    (alpha 1) at lr 3e-4 (alpha 0 at a useful lr, 1e-3, lost a third of the utility).
    ``llama`` (SmolLM2): see ``family_defaults``.
    """

    name = "undial"
    summary = "language models: self-distillation with the true token's logit lowered"
    stream = 560

    @dataclass(frozen=True)
    class Config(PairedLMUnlearner.Config):
        lr: float = 1e-4
        alpha: float = 0.0
        beta: float = 10.0

    family_defaults = {"tiny-gpt": {"lr": 3e-4, "alpha": 1.0}, "llama": {"lr": 1e-4, "alpha": 1.0}}

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        batch = forget["answer"]
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            teacher = network_of(task.original)(**inputs).logits
        return undial_loss(net(**inputs).logits, teacher, batch["labels"], self.config.beta)
