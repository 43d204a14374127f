"""Recipe models fitted by their own certified solvers instead of the SGD trainer.

``Recipe(model="certified_logreg", model_options={...})`` trains with
:func:`~obliviate.certified.logistic.fit_certified` (loss-perturbed L2 logistic regression,
Guo et al. 2020) and ``Recipe(model="d2d_logreg", ...)`` with
:func:`~obliviate.certified.descent_to_delete.train_descent_to_delete` (Neel et al. 2021). The
options are those functions' keyword arguments; the seed is the recipe's. Going through
``obliviate.train`` means the oracle, the ``retrain`` method and ``obliviate bench`` treat these
models like every other recipe: the oracle is the same solver on the retained data. Each solver is
registered with the trainer (:mod:`obliviate.training.backends`), which never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from obliviate.certified.descent_to_delete import train_descent_to_delete
from obliviate.certified.logistic import fit_certified
from obliviate.certified.stored_hessian import fit_stored_hessian
from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.training.backends import register_solver
from obliviate.training.recipe import Recipe

__all__ = ["SOLVERS", "solve"]

SOLVERS: dict[str, Callable[..., nn.Module]] = {
    "certified_logreg": fit_certified,
    "certified_logreg_stored": fit_stored_hessian,  # the same model keeping its Hessian: O(d^2) removals
    "d2d_logreg": train_descent_to_delete,
}


def solve(recipe: Recipe, data: Dataset) -> nn.Module:
    """Fit ``recipe.model`` on ``data`` with its solver, ``recipe.options`` and ``recipe.seed``."""
    fit = SOLVERS[recipe.model]
    try:
        return fit(data, seed=recipe.seed, **recipe.options)
    except TypeError as exc:
        raise InvalidInputError(
            f"bad model_options for {recipe.model!r}: {exc}; they are the keyword arguments of {fit.__name__}."
        ) from exc


for _name in SOLVERS:
    register_solver(_name, solve)
