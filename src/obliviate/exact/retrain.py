"""Retraining from scratch on the retain set: the exact baseline and the oracle's recipe.

The unlearned model *is* the model trained without the forget set (Bourtoule et al. 2021 call
this the naive exact method); it costs a full training run. Its result equals
``obliviate.retrain(recipe, data, request, cache=False)`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.errors import MissingRecipeError
from obliviate.storage import spec_of
from obliviate.training.loop import num_batches
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train
from obliviate.unlearning.base import EXACT, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["Retrain"]


@register
class Retrain(Unlearner):
    """Train the recipe from its seed on D_r: ``recipe=`` if given, else the one the model records.

    A user's own module records no recipe; then ``recipe=`` is required and the result is that
    recipe's architecture (the oracle is defined by the recipe, not by the module passed in).
    """

    name = "retrain"
    guarantee = EXACT
    summary = "retrain from scratch on the retain set (exact, full cost)"

    @dataclass(frozen=True)
    class Config:
        pass

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        recipe = task.recipe or _recipe_of(model)
        if recipe is None:
            raise MissingRecipeError(self.name)
        task.record_read(task.retain)
        fresh = train(recipe, task.retain)
        task.gradient_steps += recipe.epochs * num_batches(len(task.retain), recipe.batch_size)
        task.examples_seen += recipe.epochs * len(task.retain)
        return fresh


def _recipe_of(model: nn.Module) -> Recipe | None:
    """The recipe a model built by obliviate records; ``None`` for the user's own modules."""
    spec = spec_of(model)
    return Recipe.from_dict(spec["recipe"]) if spec else None
