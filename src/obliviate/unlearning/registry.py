"""Methods found by name, and composition with ``+`` ("prune_finetune+scrub").

Adding a method is adding one file that defines an :class:`Unlearner` subclass decorated with
:func:`register`; the families' packages import their methods, and lookups import the families.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from obliviate.errors import (
    InvalidInputError,
    UnknownConfigKeyError,
    UnknownMethodError,
)
from obliviate.unlearning.base import Cost, Guarantee, Unlearner, UnlearnTask

__all__ = ["register", "available_methods", "method_class", "make_method", "check_bounds", "Composite"]

_REGISTRY: dict[str, type[Unlearner]] = {}
_FAMILIES = ("obliviate.exact", "obliviate.certified", "obliviate.empirical", "obliviate.prompting")


def register(cls: type[Unlearner]) -> type[Unlearner]:
    """Class decorator: make ``cls`` findable by ``cls.name``."""
    if not cls.name or "+" in cls.name or "." in cls.name:
        raise ValueError(f"method name {cls.name!r} must be non-empty and free of '+' and '.'")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_families() -> None:
    for module in _FAMILIES:
        importlib.import_module(module)


def available_methods() -> dict[str, type[Unlearner]]:
    """Every registered method, by name, sorted."""
    _load_families()
    return dict(sorted(_REGISTRY.items()))


def method_class(name: str) -> type[Unlearner]:
    methods = available_methods()
    if name not in methods:
        raise UnknownMethodError(name, methods)
    return methods[name]


class Composite(Unlearner):
    """Methods run one after another on the same request; costs add up.

    Every part keeps the task's original model as its reference (SCRUB's teacher, KL targets).
    """

    name = "composite"

    def __init__(self, parts: list[Unlearner]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        kinds = {p.guarantee.kind for p in parts}
        self.guarantee = parts[0].guarantee if len(kinds) == 1 else Guarantee("empirical")
        self.config = None

    def settings(self) -> dict[str, Any]:
        return {p.name: p.settings() for p in self.parts}

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.parts)

    def execute(self, model: nn.Module, task: UnlearnTask) -> tuple[nn.Module, Cost]:
        total = Cost()
        touched: set[int] = set()
        for part in self.parts:
            model, cost = part.execute(model, task)
            total = total + cost
            touched |= task._touched
        total.examples_touched = len(touched)
        return model, total


def _split_settings(names: list[str], settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Route ``{"alpha": 1}`` or ``{"scrub.alpha": 1}`` to the named parts."""
    routed: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in settings.items():
        if "." in key:
            method, _, sub = key.partition(".")
            if method not in routed:
                raise InvalidInputError(
                    f"setting {key!r} names method {method!r}, which is not part of {'+'.join(names)!r}."
                )
            routed[method][sub] = value
        else:
            owners = [n for n in names if key in method_class(n).defaults()]
            if not owners:
                if len(names) == 1:
                    raise UnknownConfigKeyError(names[0], key, method_class(names[0]).defaults())
                raise InvalidInputError(
                    f"no part of {'+'.join(names)!r} has a setting {key!r}; "
                    f"write it as method.key, e.g. {names[0]}.{key}."
                )
            for n in owners:
                routed[n][key] = value
    return routed


def make_method(name: str | Unlearner, settings: Mapping[str, Any] | None = None) -> Unlearner:
    """An :class:`Unlearner` for ``name`` ("scrub", "prune_finetune+scrub") with ``settings`` applied."""
    if isinstance(name, Unlearner):
        if settings:
            raise InvalidInputError("pass settings either in the Unlearner you built or as settings=, not both.")
        for part in getattr(name, "parts", None) or [name]:
            check_bounds(part)
        return name
    if not isinstance(name, str) or not name.strip():
        raise UnknownMethodError(str(name), available_methods())
    names = [n.strip() for n in name.split("+")]
    for n in names:
        method_class(n)
    if len(set(names)) != len(names):
        raise InvalidInputError(f"{name!r} names a method twice; settings could not tell the two apart.")
    for key, value in (settings or {}).items():
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in _NOT_FINITE:
            raise InvalidInputError(f"setting {key!r} must be a finite number, got {value!r}.")
    routed = _split_settings(names, settings or {})
    parts = [method_class(n)(**routed[n]) for n in names]
    for part in parts:
        check_bounds(part)
    return parts[0] if len(parts) == 1 else Composite(parts)


_NOT_FINITE = {"nan", "inf", "infinity"}
MAX_INT_SETTING = 1_000_000  # any other integer setting (layer counts, k): far above a real value


def _bound(name: str) -> tuple[float, float, str] | None:
    """(low, high, what) for a setting named ``name``: counts of passes and batch sizes have hard ceilings."""
    from obliviate.training.recipe import MAX_BATCH_SIZE, MAX_EPOCHS

    if name.endswith("epochs") or name.endswith("steps"):
        return 0, MAX_EPOCHS, "passes"
    if name.endswith("batch_size"):
        return 1, MAX_BATCH_SIZE, "examples per batch"
    if name == "lr" or name.endswith("_lr"):  # no ceiling: a huge rate diverges at once (DivergedError)
        return 0, math.inf, "learning rate"
    return None


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def check_bounds(method: Unlearner) -> None:
    """Refuse absurd numeric settings (``epochs=1000000000``, a negative learning rate) with the valid range.

    Methods check their own finer ranges in ``validate_config``; this adds the ceilings every
    method shares, so that a typo cannot start a run that never ends or allocates without limit."""
    config = getattr(method, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values = value if isinstance(value, tuple) else (value,)
        bound = _bound(f.name)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if isinstance(v, float) and not math.isfinite(v):
                raise InvalidInputError(f"{method.name}.{f.name} must be a finite number, got {v}.")
            if bound is not None:
                low, high, what = bound
                if what == "learning rate" and not v > low:
                    raise InvalidInputError(f"{method.name}.{f.name} ({what}) must be > 0, got {v}.")
                if not low <= v <= high:
                    raise InvalidInputError(
                        f"{method.name}.{f.name} ({what}) must be in {_number(low)}..{_number(high)}, got {v}."
                    )
            elif isinstance(v, int) and abs(v) > MAX_INT_SETTING:
                raise InvalidInputError(
                    f"{method.name}.{f.name} must be in -{MAX_INT_SETTING}..{MAX_INT_SETTING}, got {v}."
                )
