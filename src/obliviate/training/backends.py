"""Trainers that other families plug into :func:`obliviate.train`: certified solvers and private training.

The trainer knows how to run SGD over a recipe. Two kinds of recipe are trained by code that lives
elsewhere, in :mod:`obliviate.certified`: convex models fitted by their own certified solvers
(``Recipe(model="certified_logreg")``) and DP-SGD (``Recipe(privacy=DP(...))``). Those modules
register themselves here when imported, so the dependency runs one way (certified -> training) and
the trainer never imports them. Importing :mod:`obliviate` imports :mod:`obliviate.certified`, so
the registrations are in place for every user of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from obliviate.errors import InvalidInputError

__all__ = ["register_solver", "solver", "register_private_trainer", "private_trainer"]

# name -> solver(recipe, data) -> fitted module
_SOLVERS: dict[str, Callable[..., nn.Module]] = {}
# private_trainer(model, data, *, recipe, show_progress) -> module carrying its privacy record
_PRIVATE: list[Callable[..., nn.Module]] = []


def register_solver(name: str, fit: Callable[..., nn.Module]) -> None:
    """Make ``Recipe(model=name)`` train by ``fit(recipe, data)`` instead of SGD."""
    _SOLVERS[name] = fit


def solver(name: str) -> Callable[..., nn.Module] | None:
    """The registered solver of model ``name``, or ``None`` when the model is trained by SGD."""
    return _SOLVERS.get(name)


def register_private_trainer(fn: Callable[..., nn.Module]) -> None:
    """Make ``Recipe(privacy=...)`` train by ``fn(model, data, recipe=, show_progress=)`` (one trainer)."""
    _PRIVATE[:] = [fn]


def private_trainer() -> Callable[..., Any]:
    """The registered private trainer; a typed error when none is (``obliviate.certified`` not imported)."""
    if not _PRIVATE:
        raise InvalidInputError(
            "recipe.privacy asks for DP-SGD training, but no private trainer is registered: "
            "import obliviate (or obliviate.certified) before training."
        )
    return _PRIVATE[0]
