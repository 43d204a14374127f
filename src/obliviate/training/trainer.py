"""train(recipe, data): the deterministic trainer.

The same recipe, example ids and data give bit-identical weights on the same machine (with the
same torch version and thread count, which change float reductions): the data are put in id
order, weights are initialised from the recipe's seed, and each epoch's order comes from a
generator seeded by it. The global RNG is neither read nor changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.models import SOLVER_MODELS, build_model
from obliviate.progress import progress_bar
from obliviate.storage import ModelSpec, attach_spec, register_model_files
from obliviate.training.backends import private_trainer, solver
from obliviate.training.loop import (
    FiniteWatch,
    make_optimizer,
    make_scheduler,
    minibatches,
    num_batches,
    seeded_generator,
    seeded_global_rng,
)
from obliviate.training.recipe import Recipe

__all__ = ["train", "fit", "run_epochs"]


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
    # A constant schedule multiplies the rate by 1.0 at every step: skipping its LambdaLR changes no
    # bit of the result and saves its per-step Python work.
    scheduler = None
    if recipe.schedule != "constant":
        scheduler = make_scheduler(recipe.schedule, optimizer, steps_per_epoch * recipe.epochs)
    generator = seeded_generator(recipe.seed, stream=1)
    model.train()

    def epoch() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        return ((X[idx], y[idx]) for idx in minibatches(n, recipe.batch_size, generator=generator))

    run_epochs(
        model, epoch, optimizer, scheduler, epochs=recipe.epochs, lr=recipe.lr, where=where, show_progress=show_progress
    )
    return model.eval()


def run_epochs(
    model: nn.Module,
    epoch: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    epochs: int,
    lr: float,
    where: str,
    show_progress: bool = False,
    check_every: int = 32,
) -> int:
    """``epochs`` passes of cross-entropy steps over the ``(x, y)`` batches ``epoch()`` yields; returns the step count.

    Shared by :func:`fit` and DP-SGD training (whose Poisson batches may be empty: an empty
    batch's undefined mean loss is not checked, and its step still runs). ``scheduler`` may be
    ``None`` (a constant rate).

    A non-finite loss raises :class:`DivergedError` naming its step; the losses are checked in
    groups (:class:`~obliviate.training.loop.FiniteWatch`: one host sync per ``check_every`` steps
    and at the end of each epoch) rather than one ``bool()`` per step, which gives the same error
    and, for a finite run, the same weights.
    """
    step = 0
    watch = FiniteWatch(where=where, lr=lr, every=check_every)
    with progress_bar(where, total=epochs, enabled=show_progress) as advance:
        for _ in range(epochs):
            for xb, yb in epoch():
                loss = F.cross_entropy(model(xb), yb)
                if len(yb):
                    watch(loss, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
            watch.flush()
            advance()
    return step


def train(recipe: Recipe, data: Dataset, *, show_progress: bool = False) -> nn.Module:
    """Build ``recipe.model`` from ``recipe.seed`` and train it on ``data``; returns the module (eval mode).

    With ``recipe.privacy`` set, training is DP-SGD (:func:`obliviate.certified.dp.train_private`)
    and the model carries its spent privacy, read with :func:`obliviate.certified.dp.privacy_of`.
    Solver models and DP-SGD are registered by :mod:`obliviate.certified` in
    :mod:`obliviate.training.backends`; this module does not import them.
    """
    if not isinstance(recipe, Recipe):
        raise InvalidInputError(f"recipe must be an obliviate.Recipe, got {type(recipe).__name__}.")
    if not isinstance(data, Dataset):
        raise InvalidInputError(
            f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays."
        )
    if len(data) == 0:
        raise InvalidInputError("cannot train on an empty dataset.")
    fit_solver = solver(recipe.model)
    if fit_solver is not None:  # convex models with a certified solver of their own
        model = fit_solver(recipe, data)
        return attach_spec(model, recipe=recipe, input_shape=data.input_shape, num_classes=data.num_classes).eval()
    model = build_model(recipe.model, data.input_shape, data.num_classes, seed=recipe.seed, options=recipe.options)
    attach_spec(model, recipe=recipe, input_shape=data.input_shape, num_classes=data.num_classes)
    with seeded_global_rng(recipe.seed):  # any module using the global RNG (dropout) stays seeded
        if recipe.privacy is not None:
            return private_trainer()(model, data, recipe=recipe, show_progress=show_progress)
        return fit(model, data, recipe=recipe, show_progress=show_progress)


def rebuild(spec: ModelSpec) -> nn.Module:
    """The untrained module a saved spec describes, with the spec attached (``load_model`` fills the weights)."""
    model = build_model(spec["model"], spec["input_shape"], spec["num_classes"], options=spec["options"])
    return attach_spec(
        model,
        recipe=Recipe.from_dict(spec["recipe"]),
        input_shape=tuple(spec["input_shape"]),
        num_classes=spec["num_classes"],
    )


# storage sits below the trainer: it learns here how to rebuild a saved model, and that solver models
# (whose state holds their certificate's secret noise) are never saved.
register_model_files(rebuild=rebuild, not_saved=SOLVER_MODELS)
