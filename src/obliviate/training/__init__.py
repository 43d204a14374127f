"""Recipes, the deterministic trainer and the cached oracle."""

from obliviate.training.oracle import retrain
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import fit, train

__all__ = ["Recipe", "fit", "retrain", "train"]
