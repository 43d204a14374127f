"""train(recipe, data): the deterministic trainer.

The same recipe, example ids and data give bit-identical weights on the same machine (with the
same torch version and thread count, which change float reductions): the data are put in id
order, weights are initialised from the recipe's seed, and each epoch's order comes from a
generator seeded by it. The global RNG is neither read nor changed.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.models import build_model
from obliviate.progress import progress_bar
from obliviate.storage import attach_spec
from obliviate.training.loop import (
    check_finite,
    make_optimizer,
    make_scheduler,
    minibatches,
    num_batches,
    seeded_generator,
    seeded_global_rng,
)
from obliviate.training.recipe import Recipe

__all__ = ["train", "fit"]


def fit(
    model: nn.Module,
    data: Dataset,
    *,
    recipe: Recipe,
    where: str = "training",
    show_progress: bool = False,
) -> nn.Module:
    """Run the recipe's optimiser, schedule and epochs on ``model`` over ``data`` (in place)."""
    data = data.sorted_by_id()
    X, y = data.tensors
    n = len(data)
    steps_per_epoch = num_batches(n, recipe.batch_size)
    optimizer = make_optimizer(
        recipe.optimizer, model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    scheduler = make_scheduler(recipe.schedule, optimizer, steps_per_epoch * recipe.epochs)
    generator = seeded_generator(recipe.seed, stream=1)
    model.train()
    step = 0
    with progress_bar(where, total=recipe.epochs, enabled=show_progress) as advance:
        for _ in range(recipe.epochs):
            for idx in minibatches(n, recipe.batch_size, generator=generator):
                loss = F.cross_entropy(model(X[idx]), y[idx])
                check_finite(loss, step=step, where=where, lr=recipe.lr)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
            advance()
    return model.eval()


def train(recipe: Recipe, data: Dataset, *, show_progress: bool = False) -> nn.Module:
    """Build ``recipe.model`` from ``recipe.seed`` and train it on ``data``; returns the module (eval mode)."""
    if not isinstance(recipe, Recipe):
        raise InvalidInputError(f"recipe must be an obliviate.Recipe, got {type(recipe).__name__}.")
    if not isinstance(data, Dataset):
        raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays.")
    if len(data) == 0:
        raise InvalidInputError("cannot train on an empty dataset.")
    model = build_model(recipe.model, data.input_shape, data.num_classes, seed=recipe.seed, options=recipe.options)
    attach_spec(model, recipe=recipe, input_shape=data.input_shape, num_classes=data.num_classes)
    with seeded_global_rng(recipe.seed):  # any module using the global RNG (dropout) stays seeded
        return fit(model, data, recipe=recipe, show_progress=show_progress)
