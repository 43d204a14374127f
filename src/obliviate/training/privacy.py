"""The ``DP`` privacy setting of a recipe: the (epsilon, delta) target of DP-SGD training.

A recipe field, so it lives with the recipe; the private training loop that honours it is
:func:`obliviate.certified.dp.train_private`, registered with the trainer through
:mod:`obliviate.training.backends`. ``obliviate.certified.dp.DP`` is this class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from obliviate.errors import InvalidInputError

__all__ = ["DP", "ACCOUNTANTS"]

ACCOUNTANTS = ("prv", "rdp", "gdp")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"DP.{name} must be a number, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class DP:
    """A differential-privacy target for DP-SGD training: (``epsilon``, ``delta``)-DP.

    ``epsilon`` > 0 (finite: the non-private model is ``privacy=None``), ``delta`` in (0, 1) and
    below 1/n at training time (1e-5 is the usual choice for thousands of examples),
    ``max_grad_norm`` the per-example clipping norm C, ``accountant`` one of ``prv`` (default, the
    tightest), ``rdp`` or ``gdp``.
    """

    epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "prv"

    def __post_init__(self) -> None:
        for name in ("epsilon", "delta", "max_grad_norm"):
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise InvalidInputError(
                f"DP.epsilon must be a finite number > 0, got {self.epsilon}; for a non-private model leave privacy=None."
            )
        if not 0 < self.delta < 1:
            raise InvalidInputError(f"DP.delta must lie in (0, 1), got {self.delta}; 1e-5 or below 1/n is usual.")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise InvalidInputError(f"DP.max_grad_norm must be a finite number > 0, got {self.max_grad_norm}.")
        if self.accountant not in ACCOUNTANTS:
            raise InvalidInputError(f"DP.accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: Any) -> DP:
        """A ``DP`` from a ``DP`` or its dict (as a saved recipe holds it)."""
        if isinstance(value, DP):
            return value
        if isinstance(value, Mapping):
            names = {f.name for f in fields(cls)}
            unknown = set(value) - names
            if unknown:
                raise InvalidInputError(f"unknown DP fields {sorted(unknown)}; valid fields: {sorted(names)}.")
            if "epsilon" not in value:
                raise InvalidInputError("a DP privacy setting needs epsilon, e.g. {'epsilon': 1.0, 'delta': 1e-5}.")
            return cls(**dict(value))
        raise InvalidInputError(
            f"privacy must be an obliviate DP(epsilon=..., delta=...) or its dict, got {type(value).__name__}."
        )
