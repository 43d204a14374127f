"""The Unlearner contract: one class per method, its config beside it, one entry point.

A method subclasses :class:`Unlearner`, declares ``name``, ``guarantee``, a frozen dataclass
``Config`` holding the published defaults, and implements ``run(model, task)``, which edits a
private copy of the original model in place. The base class validates, copies, times and
counts; the method only says how its loss and update go (as open-unlearning's trainers each
override one ``compute_loss``).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import DivergedError, InvalidInputError, UnknownConfigKeyError
from obliviate.training.loop import (
    check_finite,
    minibatches,
    seeded_generator,
    seeded_global_rng,
)
from obliviate.training.recipe import Recipe

__all__ = [
    "Guarantee",
    "EXACT",
    "EMPIRICAL",
    "BEHAVIOURAL",
    "Cost",
    "UnlearnResult",
    "UnlearnTask",
    "Unlearner",
    "coerce_setting",
]


@dataclass(frozen=True)
class Guarantee:
    """What a method promises: ``exact``, ``certified`` (with epsilon, delta), ``empirical``, ``behavioural``."""

    kind: Literal["exact", "certified", "empirical", "behavioural"]
    epsilon: float | None = None
    delta: float | None = None

    def __str__(self) -> str:
        if self.kind == "certified":
            if self.epsilon is None or self.delta is None:
                return "certified(epsilon, delta from the model)"
            return f"certified(epsilon={self.epsilon:g}, delta={self.delta:g})"
        return self.kind


EXACT = Guarantee("exact")
EMPIRICAL = Guarantee("empirical")
BEHAVIOURAL = Guarantee("behavioural")


@dataclass
class Cost:
    """What an unlearning run cost.

    ``gradient_steps`` counts backward passes (optimiser steps and gradient evaluations such as
    saliency or importance estimates); ``examples_seen`` counts example-passes in those; and
    ``examples_touched`` counts distinct examples read.
    """

    seconds: float = 0.0
    gradient_steps: int = 0
    examples_seen: int = 0
    examples_touched: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.seconds + other.seconds,
            self.gradient_steps + other.gradient_steps,
            self.examples_seen + other.examples_seen,
            self.examples_touched + other.examples_touched,
        )

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass
class UnlearnResult:
    """The unlearned model, what it cost, and which method and settings made it."""

    model: nn.Module
    cost: Cost
    method: str
    guarantee: Guarantee
    config: dict[str, Any]
    forget_ids: np.ndarray

    def __repr__(self) -> str:
        return (
            f"UnlearnResult(method={self.method!r}, guarantee={self.guarantee}, forgot={len(self.forget_ids)} examples, "
            f"seconds={self.cost.seconds:.3f}, gradient_steps={self.cost.gradient_steps})"
        )


@dataclass
class UnlearnTask:
    """Everything a method may read: the frozen original, the forget and retain sets, the seed.

    Methods draw batches through :meth:`batches` and update through :meth:`step`, which keep
    the cost record and raise :class:`DivergedError` on a NaN or infinite loss.
    """

    original: nn.Module
    forget: Dataset
    retain: Dataset
    seed: int = 0
    recipe: Recipe | None = None
    method: str = ""
    gradient_steps: int = 0
    examples_seen: int = 0
    _touched: set[int] = field(default_factory=set)

    @property
    def num_classes(self) -> int:
        return self.retain.num_classes

    @property
    def examples_touched(self) -> int:
        return len(self._touched)

    def generator(self, stream: int) -> torch.Generator:
        """A generator for this run's ``stream``: same seed and stream, same numbers."""
        return seeded_generator(self.seed, stream)

    def batches(
        self,
        which: Literal["forget", "retain"] | Dataset,
        batch_size: int,
        *,
        generator: torch.Generator,
        shuffle: bool = True,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the forget set, the retain set or a derived ``Dataset`` (e.g. relabelled
        forget examples plus retain) as ``(x, y)`` batches, recording which ids were read."""
        data = which if isinstance(which, Dataset) else self.forget if which == "forget" else self.retain
        X, y = data.tensors
        for idx in minibatches(len(data), batch_size, generator=generator, shuffle=shuffle):
            self._touched.update(data.ids[idx.numpy()].tolist())
            yield X[idx], y[idx]

    def record_read(self, data: Dataset) -> None:
        """Count every example of ``data`` as touched (for methods that read a whole set at once)."""
        self._touched.update(data.ids.tolist())

    def backward(self, loss: torch.Tensor, *, batch: int, lr: float | None = None) -> None:
        """``loss.backward()`` after the divergence check; counts one gradient evaluation."""
        check_finite(loss, step=self.gradient_steps, where=f"unlearning with {self.method!r}", lr=lr)
        loss.backward()
        self.gradient_steps += 1
        self.examples_seen += int(batch)

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, *, batch: int) -> None:
        """zero_grad, checked backward, optimiser step."""
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss, batch=batch, lr=optimizer.param_groups[0]["lr"])
        optimizer.step()


def coerce_setting(value: Any, default: Any, *, method: str, key: str) -> Any:
    """Convert a CLI string (``"0.1"``, ``"true"``, ``"(1, 2)"``) to the type of the default."""
    if not isinstance(value, str) or isinstance(default, str):
        result = value
    elif isinstance(default, bool):
        low = value.strip().lower()
        if low not in {"true", "false", "1", "0", "yes", "no"}:
            raise InvalidInputError(f"{method}.{key} expects true or false, got {value!r}.")
        result = low in {"true", "1", "yes"}
    else:
        try:
            result = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as exc:
            raise InvalidInputError(f"{method}.{key}: cannot read {value!r} as a value.") from exc
    if isinstance(default, bool):
        if not isinstance(result, bool):
            raise InvalidInputError(f"{method}.{key} expects true or false, got {value!r}.")
    elif isinstance(default, int) and not isinstance(default, bool):
        if isinstance(result, float) and result.is_integer():
            result = int(result)
        if not isinstance(result, int) or isinstance(result, bool):
            raise InvalidInputError(f"{method}.{key} expects an integer, got {value!r}.")
    elif isinstance(default, float):
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise InvalidInputError(f"{method}.{key} expects a number, got {value!r}.")
        result = float(result)
    elif isinstance(default, tuple):
        result = tuple(result) if isinstance(result, list | tuple) else (result,)
    return result


class Unlearner:
    """Base class of every method. Subclasses set ``name``, ``guarantee``, ``Config`` and ``run``."""

    name: ClassVar[str] = ""
    guarantee: ClassVar[Guarantee] = EMPIRICAL
    summary: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, config: Any = None, **settings: Any) -> None:
        base = config if config is not None else self.Config()
        if not isinstance(base, self.Config):
            raise InvalidInputError(f"config for {self.name!r} must be a {self.name}.Config, got {type(base).__name__}.")
        valid = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        updates = {}
        for key, value in settings.items():
            if key not in valid:
                raise UnknownConfigKeyError(self.name, key, valid)
            updates[key] = coerce_setting(value, valid[key], method=self.name, key=key)
        self.config = dataclasses.replace(base, **updates)
        self.validate_config()

    def validate_config(self) -> None:
        """Check the config's ranges; subclasses raise :class:`InvalidInputError` naming the setting."""
        for f in dataclasses.fields(self.config):
            value = getattr(self.config, f.name)
            if isinstance(value, float) and not np.isfinite(value):
                raise InvalidInputError(f"{self.name}.{f.name} must be finite, got {value}.")
            if f.name in {"lr", "epochs", "batch_size", "forget_batch_size", "retain_batch_size"} and value <= 0:
                raise InvalidInputError(f"{self.name}.{f.name} must be > 0, got {value}.")
            if f.name in {"momentum", "weight_decay"} and value < 0:
                raise InvalidInputError(f"{self.name}.{f.name} must be >= 0, got {value}.")

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return dataclasses.asdict(cls.Config())

    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"

    # -------------------------------------------------------------- the method
    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        """Unlearn ``task.forget`` from ``model`` (a private copy of the original) and return it."""
        raise NotImplementedError

    def execute(self, model: nn.Module, task: UnlearnTask) -> tuple[nn.Module, Cost]:
        """Run on a copy of ``model``, timed and counted; the input model is never modified."""
        work = copy.deepcopy(model)
        for p in work.parameters():
            p.requires_grad_(True)
        steps0, seen0, touched0 = task.gradient_steps, task.examples_seen, set(task._touched)
        task._touched = set()
        task.method = self.name
        start = time.perf_counter()
        with seeded_global_rng(task.seed):
            out = self.run(work, task)
        seconds = time.perf_counter() - start
        for name, p in out.named_parameters():
            if not torch.isfinite(p).all():
                raise DivergedError(f"unlearning with {self.name!r} (parameter {name})", task.gradient_steps, float("nan"))
        with torch.no_grad():  # finite weights can still overflow to non-finite logits
            out.eval()
            logits = out(task.retain.tensors[0][:64])
        if not torch.isfinite(logits).all():
            raise DivergedError(f"unlearning with {self.name!r} (model outputs)", task.gradient_steps, float("nan"))
        cost = Cost(seconds, task.gradient_steps - steps0, task.examples_seen - seen0, len(task._touched))
        task._touched |= touched0
        return out.eval(), cost
