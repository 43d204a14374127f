"""Recipe: a frozen, hashable description of how a model is built and trained.

Training is a pure function of (recipe, example ids, data): the same inputs give the same
weights, which lets the retrained oracle be cached by hash and exact unlearning prove itself
by equality.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from obliviate.errors import InvalidInputError, UnknownModelError
from obliviate.training.privacy import DP

__all__ = ["Recipe", "OPTIMIZERS", "SCHEDULES", "MAX_EPOCHS", "MAX_BATCH_SIZE", "MAX_SEED"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")

# Bounds on settings, so that a typo (epochs=1000000000) is refused at once instead of running for
# years. They are far above any useful value; method settings share them (unlearning.registry). The
# learning rate has no ceiling: a huge one diverges at once and raises DivergedError.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 1 << 24
MAX_SEED = 2**63 - 1


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Recipe:
    """Architecture, optimiser, schedule, epochs, batch size and seed of one training run.

    ``model_options`` are passed to the model builder (e.g. ``{"hidden": (64,)}`` for the
    MLP); ``schedule`` is ``constant``, ``cosine`` (annealed to 0 over all steps) or ``step``
    (x0.1 at 50% and 75% of the steps). ``privacy``, when set to an
    :class:`obliviate.training.privacy.DP` (or its dict), makes :func:`~obliviate.train` run DP-SGD
    with Opacus to that (epsilon, delta); it enters the fingerprint only when set, so recipes
    without it keep their fingerprints.
    """

    model: str = "mlp"
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"
    epochs: int = 30
    batch_size: int = 64
    seed: int = 0
    model_options: Any = ()
    privacy: Any = None

    def __post_init__(self) -> None:
        from obliviate.models import KNOWN_MODELS, SOLVER_MODELS

        object.__setattr__(self, "model_options", _freeze(self.model_options or ()))
        if self.privacy is not None:
            object.__setattr__(self, "privacy", DP.coerce(self.privacy))
        if self.model not in KNOWN_MODELS:
            raise UnknownModelError(self.model, KNOWN_MODELS)
        if self.privacy is not None and self.model in SOLVER_MODELS:
            raise InvalidInputError(
                f"privacy=DP(...) trains with DP-SGD, but {self.model!r} is fitted by its own certified solver; "
                "set its epsilon and delta in model_options instead."
            )
        if self.optimizer not in OPTIMIZERS:
            raise InvalidInputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.schedule not in SCHEDULES:
            raise InvalidInputError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        # Plain Python numbers, so that numpy scalars or "3" cannot give an equal recipe another
        # fingerprint (or none: numpy ints are not JSON).
        for name in ("epochs", "batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InvalidInputError(f"{name} must be an integer, got {value!r}.")
            object.__setattr__(self, name, int(value))
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise InvalidInputError(f"{name} must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise InvalidInputError(f"{name} must be finite, got {value}.")
            object.__setattr__(self, name, float(value))
        if not self.lr > 0:
            raise InvalidInputError(f"lr must be > 0, got {self.lr}.")
        if self.momentum < 0 or self.weight_decay < 0:
            raise InvalidInputError(
                f"momentum and weight_decay must be >= 0, got {self.momentum} and {self.weight_decay}."
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise InvalidInputError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}.")
        if self.epochs > MAX_EPOCHS:
            raise InvalidInputError(f"epochs must be in 1..{MAX_EPOCHS}, got {self.epochs}.")
        if self.batch_size > MAX_BATCH_SIZE:
            raise InvalidInputError(f"batch_size must be in 1..{MAX_BATCH_SIZE}, got {self.batch_size}.")
        if self.seed < 0:
            raise InvalidInputError(f"seed must be >= 0, got {self.seed}.")
        if self.seed > MAX_SEED:
            raise InvalidInputError(f"seed must be in 0..{MAX_SEED} (an int64), got {self.seed}.")

    @property
    def options(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.model_options}

    def with_seed(self, seed: int) -> Recipe:
        return replace(self, seed=int(seed))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_options"] = self.options
        if self.privacy is None:  # absent, not null: recipes without privacy keep their fingerprints
            del d["privacy"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recipe:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InvalidInputError(f"unknown recipe fields {sorted(unknown)}; valid fields: {sorted(names)}.")
        return cls(**dict(d))

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of every field."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
