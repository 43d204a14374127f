"""unlearn_many: one forget request applied to every model of a :class:`ModelStack`, vectorised.

Model ``i`` of the result equals ``unlearn(stack.model(i), request, data, method=..., seed=stack.seeds[i])``
up to float rounding: each model draws its batches from its own seed's generators (the streams the
method uses), and every per-model decision stays per model.

Design: a method's loop is written once, in its own file, against the
:class:`~obliviate.unlearning.base.Learner` interface (batches, a loss and a step, an early stop,
a teacher, per-model preparation). :class:`~obliviate.unlearning.base.OneModel` runs it on one
model; :class:`StackedModels` here runs the SAME loop on the whole stack. This module holds no
method's loss: a stacked step evaluates ``vmap(grad(l))`` where ``l(theta_m; batch_m)`` is the
method's own objective called on one model of the stack (a
:class:`~obliviate.training.many.FunctionalModel`) and its own batch, and steps the stacked
weights with the method's own ``torch.optim`` optimiser (SGD with momentum and weight decay, and
Adam, are elementwise, so stepping ``theta[M, ...]`` with the stacked gradients is each model's
step). BatchNorm: each model keeps its own running statistics, updated by its training-mode
forward passes; the teacher and the early-stop checks run in eval mode, the teacher on the
original's statistics. Per-model preparation (pruning thresholds, resets, saliency masks, random
labels) runs on each model alone with the method's own code (``Learner.each``).

Every method with a ``loop`` runs stacked (:func:`vectorised_methods`); the others run model by
model through :func:`~obliviate.unlearning.api.unlearn`, with a warning that gives the reason from
:data:`NOT_STACKED`, the one place that says why.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import vmap

from obliviate.data.dataset import Dataset
from obliviate.errors import DivergedError, InvalidInputError
from obliviate.request import ForgetRequest
from obliviate.training.loop import minibatches, seeded_global_rng
from obliviate.training.many import ModelStack, check_stack_finite, stacked_batches, stacked_objective
from obliviate.unlearning.api import check_model, unlearn
from obliviate.unlearning.base import Cost, Unlearner, UnlearnTask
from obliviate.unlearning.registry import available_methods, make_method

__all__ = ["ManyResult", "StackedModels", "unlearn_many", "vectorised_methods", "not_stacked_reason", "NOT_STACKED"]

Tensors = dict[str, torch.Tensor]

#: Why a method runs model by model in :func:`unlearn_many`: the one place that says so. A method
#: that is not here and has no ``loop(learner)`` gets the default reason.
NOT_STACKED: dict[str, str] = {
    "ssd": "no optimisation loop: two gradient passes and one dampening per model, which is what the "
    "per-model path does",
    "retrain": "retraining from scratch is training, not unlearning: use train_many on the retain set",
    "sisa": "a sharded ensemble of its own models, not one network per seed",
    "certified_newton": "a Newton step on a convex solver model, which has no stacked form",
    "descent_to_delete": "projected gradient descent on a convex solver model, which has no stacked form",
    "composite": "a composite (a+b) runs its parts in turn on each model",
}
_NO_LOOP = "it implements run(model, task) only, with no loop(learner) to run on a stack"


def not_stacked_reason(unlearner: Unlearner) -> str | None:
    """None if ``unlearner`` runs stacked in :func:`unlearn_many`, else why not."""
    from obliviate.unlearning.registry import Composite

    if isinstance(unlearner, Composite):
        return NOT_STACKED["composite"]
    if type(unlearner).has_loop():
        return None
    return NOT_STACKED.get(getattr(unlearner, "name", ""), _NO_LOOP)


def vectorised_methods() -> tuple[str, ...]:
    """The registered methods :func:`unlearn_many` runs stacked (every method with a ``loop``)."""
    return tuple(name for name, cls in available_methods().items() if cls.has_loop())


@dataclass
class ManyResult:
    """The unlearned stack, what it cost, and whether it ran vectorised.

    ``cost.seconds`` is the wall time of the whole stack; its step and example counts are per
    model (the largest over the stack when early stops make them differ; ``model_steps`` has each).
    """

    stack: ModelStack
    cost: Cost
    vectorised: bool
    method: str
    config: dict[str, Any]
    model_steps: tuple[int, ...] = field(default=())


class StackedModels:
    """The :class:`~obliviate.unlearning.base.Learner` of a stack: every model at once.

    Holds the weights as leaf tensors ``leaves[name]: [M, ...]``, each model's buffers (BatchNorm
    statistics), the frozen original's weights and buffers (the teacher), per-model generators
    (from ``tasks[m]``, one :class:`UnlearnTask` per model and seed), the set of models still
    training (early stops freeze a model: its later updates are undone), and the cost counts.
    """

    stacked = True

    def __init__(
        self, stack: ModelStack, forget: Dataset, retain: Dataset, tasks: Sequence[UnlearnTask], *, method: str
    ) -> None:
        self.stack, self.forget, self.retain, self.tasks, self.method = stack, forget, retain, list(tasks), method
        self.template = stack.template
        self.forward = stack.forward_fn()
        self.teacher_params, self.teacher_buffers = stack.params, stack.buffers
        self.leaves: Tensors = {k: v.clone() for k, v in stack.params.items()}
        self.buffers: Tensors = {k: v.clone() for k, v in stack.buffers.items()}
        m = len(stack)
        self.active = torch.ones(m, dtype=torch.bool)
        self.steps = np.zeros(m, dtype=np.int64)
        self.seen = np.zeros(m, dtype=np.int64)
        ids = np.concatenate([forget.ids, retain.ids])  # touched: positions 0..n_f-1 forget, then retain
        self.position = {int(i): p for p, i in enumerate(ids)}
        self.touched = torch.zeros(m, len(ids), dtype=torch.bool)
        self._pending: tuple[Tensors, torch.Tensor] | None = None
        self._masks: tuple[int, Tensors] | None = None
        self._objective: tuple[Callable[..., Any], Callable[..., Any], list[bool]] | None = None

    # ------------------------------------------------------------------ data
    def generator(self, stream: int) -> list[torch.Generator]:
        return [t.generator(stream) for t in self.tasks]

    def _data(self, which: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(X, Y, positions)``: inputs, labels (``[n]`` shared or ``[M, n]`` per model), touched positions."""
        if isinstance(which, list):  # per model, from each(): one Dataset (or None = D_r) per model
            if all(d is None for d in which):
                which = "retain"
            else:
                first = which[0]
                if any(d is None or len(d) != len(first) or not np.array_equal(d.ids, first.ids) for d in which):
                    raise InvalidInputError(
                        "per-model datasets of a stacked loop must hold the same examples (ids) in the same order; "
                        "only their labels may differ."
                    )
                X = first.tensors[0]
                Y = torch.stack([torch.from_numpy(np.asarray(d.y, dtype=np.int64)) for d in which])
                return X, Y, self._positions(first)
        data = self.retain if which in (None, "retain") else self.forget if which == "forget" else which
        X, Y = data.tensors
        return X, Y, self._positions(data)

    def _positions(self, data: Dataset) -> torch.Tensor:
        return torch.tensor([self.position[int(i)] for i in data.ids], dtype=torch.long)

    def batches(
        self, which: Any, batch_size: int, *, generator: list[torch.Generator], shuffle: bool = True
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass of per-model batches ``(x[M, b, ...], y[M, b])``, model ``m``'s drawn by ``generator[m]``."""
        X, Y, positions = self._data(which)
        m = len(self.tasks)
        if shuffle:
            cuts: Iterator[torch.Tensor] = stacked_batches(generator, len(X), batch_size)
        else:
            cuts = (cut[None].expand(m, -1) for cut in minibatches(len(X), batch_size, shuffle=False))
        for idx in cuts:
            rows = self.active.nonzero()[:, 0]
            self.touched[rows[:, None], positions[idx[rows]]] = True
            y = Y[idx] if Y.ndim == 1 else Y.gather(1, idx)
            yield X[idx], y

    def cycle(self, which: Any, batch_size: int, *, generator: list[torch.Generator]) -> Iterator[Any]:
        while True:
            yield from self.batches(which, batch_size, generator=generator)

    # ------------------------------------------------------------------ the step
    def loss(self, objective: Callable[..., Any], *args: Any) -> Any:
        """The objective on every model's own batch (training mode); BatchNorm statistics of the
        models still training are updated, as one model's forward pass updates its own."""
        if self._objective is None or self._objective[0] is not objective:  # built once per objective
            self._objective = (objective, *stacked_objective(self.forward, objective))
        _, run, has_aux = self._objective
        self.template.train()
        grads, values, aux, buffers = run(self.leaves, self.buffers, *args)
        if self.buffers:
            on = self.active
            with torch.no_grad():
                for k, v in buffers.items():
                    self.buffers[k][on] = v[on]
        self._pending = (grads, values)
        return (values, aux) if has_aux[0] else values

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        batch: int,
        masks: list[Mapping[str, torch.Tensor] | None] | None = None,
        masked_decay: float = 0.0,
    ) -> None:
        """Divergence check, gradients in (``masked_decay * theta`` added, then times ``masks``), the
        optimiser's step; frozen models keep their weights."""
        if self._pending is None:
            raise RuntimeError("step() needs a loss(): call learner.loss(objective, ...) first.")
        grads, losses = self._pending
        self._pending = None
        active = self.active
        check_stack_finite(
            losses[active].detach(),
            [s for s, a in zip(self.stack.seeds, active.tolist()) if a],
            step=int(self.steps.max()),
            where=f"unlearning with {self.method!r}",
            lr=optimizer.param_groups[0]["lr"],
        )
        stacked_masks = self._stacked_masks(masks)
        for k, p in self.leaves.items():
            g = grads[k]
            if stacked_masks is not None:
                g = g + masked_decay * p.detach()
                if k in stacked_masks:
                    g = g * stacked_masks[k]
            p.grad = g
        frozen = ~active
        kept = {k: p[frozen].clone() for k, p in self.leaves.items()} if bool(frozen.any()) else None
        optimizer.step()
        if kept is not None:
            with torch.no_grad():
                for k, p in self.leaves.items():
                    p[frozen] = kept[k]
        on = active.numpy()
        self.steps[on] += 1
        self.seen[on] += int(batch)

    def _stacked_masks(self, masks: list[Mapping[str, torch.Tensor] | None] | None) -> Tensors | None:
        """Per-model masks (one dict per model, from each()) as stacked ``[M, ...]`` tensors, built once."""
        if masks is None or all(m is None for m in masks):
            return None
        if self._masks is None or self._masks[0] != id(masks):
            self._masks = (id(masks), {k: torch.stack([m[k] for m in masks]) for k in masks[0]})
        return self._masks[1]

    # ------------------------------------------------------------------ checks and teacher
    @torch.no_grad()
    def forgotten(self, logits: torch.Tensor, y: torch.Tensor, stop_accuracy: float) -> bool:
        """Freeze every model still training whose whole forget set is now ``<= stop_accuracy``
        accurate (eval mode, its own BatchNorm statistics); True when none is left.

        Per model the rule of :meth:`OneModel.forgotten`: off when negative; at 0 the full check
        runs only for models with no correct prediction in the current batch's logits.
        """
        if stop_accuracy < 0:
            return False
        need = self.active.clone()
        if stop_accuracy == 0:
            need &= ~(logits.detach().argmax(dim=-1) == y).any(dim=1)
        if bool(need.any()):
            Xf, yf = self.forget.tensors
            at = need.nonzero()[:, 0]
            self.touched[at, : len(self.forget)] = True
            params = {k: v[at] for k, v in self.leaves.items()}
            buffers = {k: v[at] for k, v in self.buffers.items()}
            self.template.eval()
            full = vmap(self.forward, in_dims=(0, 0, None))(params, buffers, Xf)
            self.template.train()
            accuracy = (full.argmax(dim=-1) == yf).float().mean(dim=1)
            for j, m in enumerate(at.tolist()):
                if float(accuracy[j]) <= stop_accuracy:
                    self.active[m] = False
        return not bool(self.active.any())

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        """The original models' logits on each model's own batch ``x[M, b, ...]`` (eval mode, their own statistics)."""
        self.template.eval()
        out = vmap(self.forward)(self.teacher_params, self.teacher_buffers, x)
        self.template.train()
        return out

    # ------------------------------------------------------------------ per-model preparation
    def each(self, fn: Callable[[nn.Module, UnlearnTask], Any]) -> list[Any]:
        """``fn(model_m, tasks[m])`` on each model alone (seeded as ``unlearn`` seeds a run); the
        changes ``fn`` makes to the model's weights and buffers are kept in the stack. ``task.original``
        there is model m's own frozen original (as ``unlearn`` gives it), not the stack's template."""
        out = []
        for m, task in enumerate(self.tasks):
            model = self._module(m)
            # the same task object (its cost counters and any per-task state persist), holding model m's original
            # for the call
            shared, task.original = task.original, self._original(m)
            try:
                with seeded_global_rng(task.seed):
                    out.append(fn(model, task))
            finally:
                task.original = shared
            with torch.no_grad():
                for name, p in model.named_parameters():
                    self.leaves[name][m] = p.detach()
                for name, b in model.named_buffers():
                    if name in self.buffers:
                        self.buffers[name][m] = b
        return out

    def _original(self, m: int) -> nn.Module:
        """Model m's original, frozen and in eval mode (the teacher's weights and statistics)."""
        module = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, t in (*module.named_parameters(), *module.named_buffers()):
                t.copy_(
                    (self.teacher_params.get(name) if name in self.teacher_params else self.teacher_buffers[name])[m]
                )
        return module.eval().requires_grad_(False)

    def _module(self, m: int) -> nn.Module:
        module = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, t in (*module.named_parameters(), *module.named_buffers()):
                t.copy_((self.leaves.get(name) if name in self.leaves else self.buffers[name])[m])
        for p in module.parameters():
            p.requires_grad_(True)
        return module.train()

    def first(self, values: list[Any]) -> Any:
        return values[0]

    def field(self, values: list[Mapping[str, Any]], key: str) -> list[Any]:
        return [v.get(key) for v in values]

    def parameters(self) -> list[torch.Tensor]:
        return list(self.leaves.values())


# ---------------------------------------------------------------------- the entry point
def unlearn_many(
    stack: ModelStack,
    request: ForgetRequest | Sequence[int] | np.ndarray,
    data: Dataset,
    *,
    method: str | Unlearner = "finetune",
    settings: Mapping[str, Any] | None = None,
) -> ManyResult:
    """Remove ``request``'s examples of ``data`` from every model of ``stack`` with ``method``.

    Model ``i`` is unlearned with seed ``stack.seeds[i]`` and equals, up to float rounding,
    ``unlearn(stack.model(i), request, data, method=method, settings=settings, seed=stack.seeds[i])``.
    The methods of :func:`vectorised_methods` run their own loop on the whole stack
    (:class:`StackedModels`); any other runs model by model, with a warning naming the method and
    the reason (:data:`NOT_STACKED`; ``vectorised=False``). Methods that retrain get
    ``stack.recipe`` with each model's seed.
    """
    if not isinstance(stack, ModelStack):
        raise InvalidInputError(f"stack must be an obliviate ModelStack (from train_many), got {type(stack).__name__}.")
    if not isinstance(data, Dataset):
        raise InvalidInputError(
            f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays."
        )
    if not isinstance(request, ForgetRequest):
        request = ForgetRequest(ids=request)
    unlearner = make_method(method, settings)
    forget, retain = request.split(data)
    check_model(stack.model(0), data)
    start = time.perf_counter()
    reason = not_stacked_reason(unlearner)
    if reason is not None:
        return _loop(stack, request, data, unlearner, start, reason)
    recipes = [stack.recipe.with_seed(s) if stack.recipe is not None else None for s in stack.seeds]
    tasks = [
        UnlearnTask(original=stack.template, forget=forget, retain=retain, seed=s, recipe=r, method=unlearner.name)
        for s, r in zip(stack.seeds, recipes, strict=True)
    ]
    learner = StackedModels(stack, forget, retain, tasks, method=unlearner.name)
    try:
        unlearner.loop(learner)
    finally:
        stack.template.eval()
    out = stack.with_params(learner.leaves, learner.buffers)
    _check_outputs(out, retain, unlearner.name, learner.steps)
    seconds = time.perf_counter() - start
    steps = learner.steps + np.array([t.gradient_steps for t in tasks])
    seen = learner.seen + np.array([t.examples_seen for t in tasks])
    touched = learner.touched.clone()
    for m, task in enumerate(tasks):  # ids read by the per-model preparation (saliency passes)
        touched[m, [learner.position[i] for i in task._touched]] = True
    cost = Cost(seconds, int(steps.max()), int(seen.max()), int(touched.sum(dim=1).max()))
    return ManyResult(out, cost, True, unlearner.name, unlearner.settings(), tuple(int(s) for s in steps))


def _loop(
    stack: ModelStack, request: ForgetRequest, data: Dataset, unlearner: Unlearner, start: float, reason: str
) -> ManyResult:
    warnings.warn(
        f"unlearn_many: method {unlearner.name!r} has no vectorised form ({reason}); unlearning the {len(stack)} "
        f"models one by one (vectorised: {', '.join(vectorised_methods())}).",
        stacklevel=3,
    )
    results = [
        unlearn(
            stack.model(i),
            request,
            data,
            method=unlearner,
            seed=s,
            recipe=stack.recipe.with_seed(s) if stack.recipe is not None else None,
        )
        for i, s in enumerate(stack.seeds)
    ]
    out = ModelStack.from_models([r.model for r in results], seeds=stack.seeds, recipe=stack.recipe)
    steps = [r.cost.gradient_steps for r in results]
    cost = Cost(
        time.perf_counter() - start,
        max(steps),
        max(r.cost.examples_seen for r in results),
        max(r.cost.examples_touched for r in results),
    )
    return ManyResult(out, cost, False, unlearner.name, unlearner.settings(), tuple(steps))


def _check_outputs(stack: ModelStack, retain: Dataset, method: str, steps: np.ndarray) -> None:
    """As :meth:`Unlearner.execute`: finite weights and finite logits on 64 retain examples, per model."""
    for name, p in stack.params.items():
        bad = ~torch.isfinite(p.reshape(len(stack), -1)).all(dim=1)
        if bool(bad.any()):
            m = int(bad.nonzero()[0, 0])
            raise DivergedError(
                f"unlearning with {method!r} (parameter {name}, model with seed {stack.seeds[m]})",
                int(steps[m]),
                float("nan"),
            )
    logits = stack.logits(retain.tensors[0][:64])
    bad = ~torch.isfinite(logits.reshape(len(stack), -1)).all(dim=1)
    if bool(bad.any()):
        m = int(bad.nonzero()[0, 0])
        raise DivergedError(
            f"unlearning with {method!r} (model outputs, model with seed {stack.seeds[m]})", int(steps[m]), float("nan")
        )
