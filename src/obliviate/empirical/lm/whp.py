"""Who's Harry Potter (WHP): fine-tune on "generic" next-token targets from a reinforced model.

Eldan & Russinovich, "Who's Harry Potter? Approximate Unlearning in LLMs", 2023, Sec. 3.1:
a *reinforced* model is the baseline trained further on the target text; tokens whose logits
rose are the ones the text teaches, so the generic prediction is
``v_generic = v_baseline - alpha * ReLU(v_reinforced - v_baseline)`` (Eq. 1) and the baseline
is fine-tuned on the target text with ``argmax v_generic`` as labels. The paper's second
ingredient, anchored-term translation with a GPT-4 dictionary, is not reproduced.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.empirical.lm.base import Batch, LMUnlearnTask, PairedLMUnlearner, finetune_on_forget
from obliviate.errors import InvalidInputError
from obliviate.lm.batches import IGNORE_INDEX, network_of
from obliviate.unlearning.registry import register

__all__ = ["WHP", "generic_logits"]


def generic_logits(baseline: torch.Tensor, reinforced: torch.Tensor, strength: float) -> torch.Tensor:
    """``v_generic = v_baseline - strength * ReLU(v_reinforced - v_baseline)`` (Eldan & Russinovich 2023, Eq. 1)."""
    return baseline - strength * F.relu(reinforced - baseline)


@register
class WHP(PairedLMUnlearner):
    """WHP: reinforce on D_f, then ``gamma * CE(f(x), argmax v_generic) + alpha * NLL_retain`` on answer tokens.

    ``strength`` is the paper's alpha (it gives no single value); ``soft=True`` trains on
    ``softmax(v_generic)`` instead of its argmax. The reinforced model trains ``reinforce_epochs``
    at ``reinforce_lr``. The paper publishes no optimiser settings: ``Config`` has the
    open-unlearning ones (lr 1e-5, 10 epochs, reinforcing likewise) and strength 20.
    ``tiny-gpt`` (tiny authors bench): lr 1e-3, 5 epochs, reinforce 5 epochs at 1e-3. ``llama``
    (SmolLM2): see ``family_defaults``. A target model fine-tuned on the forget set is already saturated on it, so
    reinforcing raises the true token's logit little (measured: +0.25 against a 5-6 logit margin)
    and small strengths leave ``argmax v_generic`` equal to the true token.
    """

    name = "whp"
    summary = "language models: fine-tune on generic targets from a reinforced model"
    stream = 590

    @dataclass(frozen=True)
    class Config(PairedLMUnlearner.Config):
        epochs: int = 10
        lr: float = 1e-5
        alpha: float = 1.0
        strength: float = 20.0
        soft: bool = False
        reinforce_epochs: int = 10
        reinforce_lr: float = 1e-5

    family_defaults = {
        "tiny-gpt": {"epochs": 5, "lr": 1e-3, "reinforce_epochs": 5, "reinforce_lr": 1e-3},
        "llama": {"epochs": 5, "lr": 1e-4, "reinforce_epochs": 5, "reinforce_lr": 1e-4},
    }

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if c.strength < 0:
            raise InvalidInputError(f"whp.strength must be >= 0 (the paper's alpha), got {c.strength}.")
        if c.reinforce_epochs <= 0 or c.reinforce_lr <= 0:
            raise InvalidInputError("whp.reinforce_epochs and whp.reinforce_lr must be > 0.")

    def run(self, model: Any, task: LMUnlearnTask) -> Any:
        c = self.config
        reinforce = dataclasses.replace(c, epochs=c.reinforce_epochs, lr=c.reinforce_lr)
        self._reinforced = finetune_on_forget(copy.deepcopy(network_of(task.original)), task, reinforce, stream=self.stream + 7)
        for p in self._reinforced.parameters():
            p.requires_grad_(False)
        try:
            return super().run(model, task)
        finally:
            del self._reinforced

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        batch = forget["answer"]
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        mask = batch["labels"][:, 1:] != IGNORE_INDEX
        with torch.no_grad():
            base = network_of(task.original)(**inputs).logits[:, :-1][mask].float()
            reinforced = self._reinforced(**inputs).logits[:, :-1][mask].float()
            generic = generic_logits(base, reinforced, self.config.strength)
            target = F.softmax(generic, -1) if self.config.soft else generic.argmax(-1)
        return F.cross_entropy(net(**inputs).logits[:, :-1][mask].float(), target)
