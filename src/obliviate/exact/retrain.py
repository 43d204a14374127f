"""Retraining from scratch on the retain set: the exact baseline and the oracle's recipe.

The unlearned model *is* the model trained without the forget set (Bourtoule et al. 2021 call
this the naive exact method); it costs a full training run. Its result equals
``obliviate.retrain(recipe, data, request, cache=False)`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.errors import MissingRecipeError
from obliviate.training.loop import num_batches
from obliviate.training.trainer import train
from obliviate.unlearning.base import EXACT, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["Retrain"]


@register
class Retrain(Unlearner):
    """Train ``task.recipe`` from its seed on D_r (needs ``recipe=``)."""

    name = "retrain"
    guarantee = EXACT
    summary = "retrain from scratch on the retain set (exact, full cost)"

    @dataclass(frozen=True)
    class Config:
        pass

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        if task.recipe is None:
            raise MissingRecipeError(self.name)
        task.record_read(task.retain)
        fresh = train(task.recipe, task.retain)
        steps = task.recipe.epochs * num_batches(len(task.retain), task.recipe.batch_size)
        task.gradient_steps += steps
        task.examples_seen += task.recipe.epochs * len(task.retain)
        return fresh
