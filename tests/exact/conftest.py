"""Fixtures for SISA tests: a small recipe, a training set with owners, and a from-scratch replay."""

from __future__ import annotations

import numpy as np
import pytest

import obliviate as ob
from obliviate.exact.sisa import slice_epochs, slice_recipe
from obliviate.models import build_model
from obliviate.storage import attach_spec
from obliviate.training.loop import seeded_global_rng
from obliviate.training.trainer import fit


@pytest.fixture(scope="session")
def sisa_recipe():
    """A small MLP with 3 epochs: 3 slices train 1, 2 and 1 epochs."""
    return ob.Recipe(model="mlp", epochs=3, lr=0.05, seed=0, model_options={"hidden": (32,)})


@pytest.fixture(scope="session")
def owned_train():
    """400 digits examples owned by 12 writers."""
    data = ob.data.digits(writers=12)
    return data.subset(data.ids[:400])


def replay(recipe: ob.Recipe, data: ob.Dataset, slices: list[np.ndarray]):
    """Train one shard from scratch on its remaining slices with the SISA schedule, without
    checkpoints: the seeded initialisation, then slice r's epochs on slices 0..r.

    With one slice this is ``ob.train(recipe, data.subset(ids))``, which the tests also check.
    """
    if len(slices) == 1:
        return ob.train(recipe, data.subset(slices[0]))
    model = build_model(recipe.model, data.input_shape, data.num_classes, seed=recipe.seed, options=recipe.options)
    attach_spec(model, recipe=recipe, input_shape=data.input_shape, num_classes=data.num_classes)
    for r, epochs in enumerate(slice_epochs(recipe.epochs, len(slices))):
        seen = np.sort(np.concatenate(slices[: r + 1]))
        if len(seen) and epochs:
            step = slice_recipe(recipe, r, epochs)
            with seeded_global_rng(step.seed):
                fit(model, data.subset(seen), recipe=step)
    return model.eval()


@pytest.fixture(scope="session")
def from_scratch():
    """``from_scratch(ens, data, shard)``: the shard retrained from scratch on its remaining ids."""

    def build(ens, data, shard):
        return replay(ens.shard_recipe(shard), data, ens.slice_ids(shard))

    return build
