"""The Unlearner contract: one class per method, its config beside it, one entry point.

A method subclasses :class:`Unlearner`, declares ``name``, ``guarantee``, a frozen dataclass
``Config`` holding the published defaults, and implements either

- ``loop(learner)``: its optimisation loop, written once against the small :class:`Learner`
  interface (batches, a loss and a step, an early-stop check, a teacher, per-model
  preparation), which :class:`OneModel` implements for one model and
  :class:`~obliviate.unlearning.many.StackedModels` for a stack of hundreds: such a method runs
  per model through ``ob.unlearn`` and stacked through ``unlearn_many`` with the same code; or
- ``run(model, task)``, which edits a private copy of the original model in place (methods with
  no loop to stack: see :data:`obliviate.unlearning.many.NOT_STACKED`).

The base class validates, copies, times and counts; the method only says how its loss and update
go (as open-unlearning's trainers each override one ``compute_loss``).
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError, UnknownConfigKeyError
from obliviate.training.loop import (
    check_finite,
    minibatches,
    seeded_generator,
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
    "Learner",
    "OneModel",
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


class Learner(Protocol):
    """What a method's ``loop`` may use: one model (:class:`OneModel`) or a stack of them
    (:class:`~obliviate.unlearning.many.StackedModels`) behind the same calls.

    Shapes: for one model a batch is ``x[b, ...]``, ``y[b]`` and a loss a scalar; for a stack of
    ``M`` models every model draws its own batch from its own seed, ``x[M, b, ...]``, ``y[M, b]``,
    and losses are ``[M]``. Loops never look inside: they pass batches on, count examples with
    ``y.shape[-1]``, and write each loss for one model, ``objective(model, *batch) -> loss`` or
    ``(loss, aux)``, where ``model(x)`` gives logits and ``model.parameters()`` the weights.

    - ``generator(stream)``; ``batches(which, batch_size, *, generator, shuffle=True)`` one pass
      over ``"forget"``, ``"retain"`` or a :class:`Dataset` (per model: :meth:`each`'s output);
      ``cycle(...)`` endless passes.
    - ``loss(objective, *args)``: the forward passes (training mode; BatchNorm statistics update),
      returning what ``objective`` returns; ``step(optimizer, *, batch, masks=None,
      masked_decay=0.0)``: backward, divergence check, the optimiser's step (gradients times
      ``masks`` after adding ``masked_decay * theta``), counted.
    - ``forgotten(logits, y, stop_accuracy) -> bool``: the early stop on the whole forget set
      (eval mode), per model; True when no model is left to train.
    - ``teacher(x)``: the frozen original's logits (eval mode, no gradient).
    - ``each(fn)``: ``fn(model, task)`` on each model alone (a module and its
      :class:`UnlearnTask`), changes to the model kept; returns the per-model results, which
      ``first`` (the first model's) and ``field`` (one key of each) read.
    - ``parameters()``: what the optimiser steps; ``forget``, ``retain``: the two sets.
    """

    forget: Dataset
    retain: Dataset

    def generator(self, stream: int) -> Any: ...
    def batches(self, which: Any, batch_size: int, *, generator: Any, shuffle: bool = True) -> Iterator[Any]: ...
    def cycle(self, which: Any, batch_size: int, *, generator: Any) -> Iterator[Any]: ...
    def loss(self, objective: Callable[..., Any], *args: Any) -> Any: ...
    def step(self, optimizer: torch.optim.Optimizer, *, batch: int, masks: Any = None, masked_decay: float = 0.0) -> None: ...
    def forgotten(self, logits: torch.Tensor, y: torch.Tensor, stop_accuracy: float) -> bool: ...
    def teacher(self, x: torch.Tensor) -> torch.Tensor: ...
    def each(self, fn: Callable[[nn.Module, UnlearnTask], Any]) -> Any: ...
    def first(self, values: Any) -> Any: ...
    def field(self, values: Any, key: str) -> Any: ...
    def parameters(self) -> list[torch.Tensor]: ...


class OneModel:
    """The :class:`Learner` of one model: ``model`` is trained in place and ``task`` keeps the costs."""

    stacked: ClassVar[bool] = False

    def __init__(self, model: nn.Module, task: UnlearnTask) -> None:
        self.model, self.task = model, task
        self.forget, self.retain = task.forget, task.retain
        self._loss: torch.Tensor | None = None

    def generator(self, stream: int) -> torch.Generator:
        return self.task.generator(stream)

    def batches(
        self, which: Literal["forget", "retain"] | Dataset | None, batch_size: int, *, generator: torch.Generator,
        shuffle: bool = True,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.task.batches("retain" if which is None else which, batch_size, generator=generator, shuffle=shuffle)

    def cycle(self, which: Any, batch_size: int, *, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self.batches(which, batch_size, generator=generator)

    def loss(self, objective: Callable[..., Any], *args: Any) -> Any:
        self.model.train()
        out = objective(self.model, *args)
        self._loss = out[0] if isinstance(out, tuple) else out
        return out

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        batch: int,
        masks: Mapping[str, torch.Tensor] | None = None,
        masked_decay: float = 0.0,
    ) -> None:
        if self._loss is None:
            raise RuntimeError("step() needs a loss(): call learner.loss(objective, ...) first.")
        optimizer.zero_grad(set_to_none=True)
        self.task.backward(self._loss, batch=int(batch), lr=optimizer.param_groups[0]["lr"])
        self._loss = None
        if masks is not None:
            for name, p in self.model.named_parameters():
                if p.grad is not None:
                    p.grad.add_(p.detach(), alpha=masked_decay)
                    if name in masks:
                        p.grad.mul_(masks[name])
        optimizer.step()

    def forgotten(self, logits: torch.Tensor, y: torch.Tensor, stop_accuracy: float) -> bool:
        """Whether the accuracy on the whole forget set is ``<= stop_accuracy`` (never when negative).

        With ``stop_accuracy`` 0 the full pass runs only when the current batch's logits have no
        correct prediction either (a set with no correct example has no batch with one, so the
        stop is exact and cheap); a threshold above 0 checks the whole set each time. The pass
        runs in eval mode and counts as a read.
        """
        if stop_accuracy < 0:
            return False
        if stop_accuracy == 0 and bool((logits.detach().argmax(dim=-1) == y).any()):
            return False
        self.task.record_read(self.task.forget)
        X, yf = self.task.forget.tensors
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            correct = float((self.model(X).argmax(dim=-1) == yf).float().mean())
        self.model.train(was_training)
        return correct <= stop_accuracy

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        return self.task.original.eval()(x)

    def each(self, fn: Callable[[nn.Module, UnlearnTask], Any]) -> Any:
        return fn(self.model, self.task)

    def first(self, values: Any) -> Any:
        return values

    def field(self, values: Mapping[str, Any], key: str) -> Any:
        return values.get(key)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.parameters())


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
    def loop(self, learner: Learner) -> None:
        """The method's loop against a :class:`Learner` (one model or a stack); see the module docstring."""
        raise NotImplementedError(f"{self.name!r} has no loop(learner); it implements run(model, task).")

    @classmethod
    def has_loop(cls) -> bool:
        """Whether the method's work is a ``loop(learner)`` (and so runs stacked in ``unlearn_many``)."""
        return cls.loop is not Unlearner.loop

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        """Unlearn ``task.forget`` from ``model`` (a private copy of the original) and return it.

        By default the method's :meth:`loop` on :class:`OneModel`; methods without a loop override this.
        """
        self.loop(OneModel(model, task))
        return model.eval()

    def execute(self, model: nn.Module, task: UnlearnTask) -> tuple[nn.Module, Cost]:
        """Run on a copy of ``model``, timed and counted; the input model is never modified
        (:func:`obliviate.unlearning.execution.execute`, the one loop of both model families)."""
        from obliviate.unlearning.execution import CLASSIFIER, execute  # execution imports this module

        return execute(self, model, task, family=CLASSIFIER)
