"""Recipes, the deterministic trainer and the cached oracle."""

from obliviate.training.many import ModelStack, train_many
from obliviate.training.oracle import retrain
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import fit, train

__all__ = ["ModelStack", "Recipe", "fit", "retrain", "train", "train_many"]
