"""unlearn_many: one forget request applied to every model of a :class:`ModelStack`, vectorised.

Model ``i`` of the result equals ``unlearn(stack.model(i), request, data, method=..., seed=stack.seeds[i])``
up to float rounding: each model draws its batches from its own seed's generators (the streams the
method's ``run()`` uses), and every per-model decision stays per model.

Design: the loss code is the method's own, and so is every per-model decision; only the loop is
stacked. The stacked loop holds the models' weights as leaf tensors ``theta[M, ...]``, evaluates
``vmap(grad(l))`` where ``l(theta_m; batch_m)`` calls the method's loss function on model ``m``'s own
batch (one model of the stack, as a function ``x -> f(theta_m; x)``, stands in for the module), and
steps the stack with the method's ``torch.optim`` optimiser. SGD (momentum, weight decay) and Adam
are elementwise, so stepping the stack with the stacked per-model gradients is each model's step.

- Fine-tuning methods (finetune, l1_sparse, random_label, salun, reset_layers, prune_finetune) are
  :class:`~obliviate.empirical.finetune.FinetunePlanned`: their ``plan(model, task)`` runs on each
  model alone (prune by that model's magnitude threshold, reset from that model's seed, SalUn's
  saliency mask of that model, random labels from that model's generator): cheap, one pass at
  most. The fine-tuning loop with the plans (penalty, per-model masks and labels) runs stacked.
- gradient_ascent: ``ascent_loss`` stacked; the early stop is decided per model before each
  step, and a model that stopped is frozen (its update is undone every step after).
- neggrad_plus and kl_retain: ``paired_objective`` with the method's ``paired_terms`` (the
  teacher is the same model of the original stack), early stop per model as above.
- scrub: ``forget_loss`` and ``retain_loss`` with the teacher's logits from the original stack.

Any other method (ssd, reinit_finetune, the exact and certified ones, composites) runs model by
model through :func:`~obliviate.unlearning.api.unlearn`, and says so with a warning.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import grad_and_value, stack_module_state, vmap

from obliviate.data.dataset import Dataset
from obliviate.errors import DivergedError, InvalidInputError
from obliviate.request import ForgetRequest
from obliviate.training.loop import make_optimizer, make_scheduler, num_batches, seeded_generator, seeded_global_rng
from obliviate.training.many import ModelStack, check_stack_finite, stacked_batches
from obliviate.unlearning.api import check_model, unlearn
from obliviate.unlearning.base import Cost, Unlearner, UnlearnTask
from obliviate.unlearning.registry import make_method

__all__ = ["ManyResult", "unlearn_many", "vectorised_methods"]

Tensors = dict[str, torch.Tensor]


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


class _StackedRun:
    """A stack being unlearned: leaves, teacher, per-model generators, freezing and cost counts."""

    def __init__(self, stack: ModelStack, forget: Dataset, retain: Dataset, *, method: str) -> None:
        self.stack, self.forget, self.retain, self.method = stack, forget, retain, method
        self.forward = stack.forward_fn()
        self.buffers = stack.buffers
        self.teacher = stack.params
        self.leaves = {k: v.clone() for k, v in stack.params.items()}
        m = len(stack)
        self.active = torch.ones(m, dtype=torch.bool)
        self.steps = np.zeros(m, dtype=np.int64)
        self.seen = np.zeros(m, dtype=np.int64)
        # positions 0..n_f-1 are the forget set, n_f.. the retain set (D_f' + D_r has the same layout)
        self.touched = torch.zeros(m, len(forget) + len(retain), dtype=torch.bool)

    def generators(self, stream: int) -> list[torch.Generator]:
        return [seeded_generator(s, stream) for s in self.stack.seeds]

    def batches(
        self, X: torch.Tensor, Y: torch.Tensor, batch_size: int, generators: list[torch.Generator], *, offset: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass of per-model batches ``(x[M, b, ...], y[M, b])``; ``Y`` is ``[n]`` or per model ``[M, n]``."""
        for idx in stacked_batches(generators, len(X), batch_size):
            self.touched[self.active.nonzero()[:, 0, None], idx[self.active] + offset] = True
            y = Y[idx] if Y.ndim == 1 else Y.gather(1, idx)
            yield X[idx], y

    def cycle(
        self, X: torch.Tensor, Y: torch.Tensor, batch_size: int, generators: list[torch.Generator], *, offset: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self.batches(X, Y, batch_size, generators, offset=offset)

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The original models' logits on each model's own batch ``x[M, b, ...]`` (eval mode)."""
        return vmap(self.forward)(self.teacher, self.buffers, x)

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        grads: Tensors,
        losses: torch.Tensor,
        *,
        batch: int,
        masks: Tensors | None = None,
        masked_decay: float = 0.0,
    ) -> None:
        """Divergence check, gradients in, the optimiser's step; frozen models keep their weights.

        With ``masks`` (1 = may change), ``masked_decay * theta`` is added to the gradient before
        the mask, as :func:`~obliviate.empirical.finetune.retain_finetune` does.
        """
        active = self.active
        check_stack_finite(
            losses[active],
            [s for s, a in zip(self.stack.seeds, active.tolist()) if a],
            step=int(self.steps.max()),
            where=f"unlearning with {self.method!r}",
            lr=optimizer.param_groups[0]["lr"],
        )
        for k, p in self.leaves.items():
            g = grads[k]
            if masks is not None:
                g = g + masked_decay * p
                if k in masks:
                    g = g * masks[k]
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

    @torch.no_grad()
    def stop_early(self, logits: torch.Tensor, y: torch.Tensor, stop_accuracy: float) -> None:
        """Freeze every active model whose whole forget set is now ``<= stop_accuracy`` accurate.

        Per model, the rule of :func:`~obliviate.empirical.gradient_ascent.forget_set_forgotten`:
        off when negative; at 0 the full check runs only for models with no correct prediction in
        the current batch's logits; the full check reads the forget set.
        """
        if stop_accuracy < 0:
            return
        need = self.active.clone()
        if stop_accuracy == 0:
            need &= ~(logits.detach().argmax(dim=-1) == y).any(dim=1)
        if not bool(need.any()):
            return
        Xf, yf = self.forget.tensors
        at = need.nonzero()[:, 0]
        self.touched[at, : len(self.forget)] = True
        params = {k: v[at] for k, v in self.leaves.items()}
        buffers = {k: v[at] for k, v in self.buffers.items()}
        full = vmap(self.forward, in_dims=(0, 0, None))(params, buffers, Xf)
        accuracy = (full.argmax(dim=-1) == yf).float().mean(dim=1)
        for j, m in enumerate(at.tolist()):
            if float(accuracy[j]) <= stop_accuracy:
                self.active[m] = False

    def model_fn(self, params: Tensors, buffers: Tensors) -> Callable[[torch.Tensor], torch.Tensor]:
        """One model of the stack as a function of its inputs (what a method's loss calls as ``model``)."""
        return lambda x: self.forward(params, buffers, x)


# ---------------------------------------------------------------------- the four stacked loops
def _finetune_planned(run: _StackedRun, method: Any, tasks: list[UnlearnTask]) -> None:
    """Each model's ``plan`` on that model, then :func:`retain_finetune`'s loop over the stack."""
    models, plans = [], []
    for i, task in enumerate(tasks):
        model = run.stack.model(i)
        for p in model.parameters():
            p.requires_grad_(True)
        with seeded_global_rng(task.seed):
            plans.append(method.plan(model, task))
        models.append(model)
    params, _ = stack_module_state(models)
    run.leaves = {k: v.detach().clone() for k, v in params.items()}
    plan = plans[0]
    data = plan.get("data") or run.retain
    X = data.tensors[0]
    Y = torch.stack([torch.from_numpy((p.get("data") or run.retain).y) for p in plans])
    offset = 0 if plan.get("data") is not None else len(run.forget)
    masks = None
    if plan.get("grad_mask") is not None:
        masks = {k: torch.stack([p["grad_mask"][k] for p in plans]) for k in plan["grad_mask"]}
    penalty = plan.get("penalty")
    weight_decay = plan["weight_decay"]
    optimizer = make_optimizer(
        "sgd",
        run.leaves.values(),
        lr=plan["lr"],
        momentum=plan["momentum"],
        weight_decay=0.0 if masks else weight_decay,
    )
    scheduler = make_scheduler("cosine", optimizer, plan["epochs"] * num_batches(len(X), plan["batch_size"]))
    generators = run.generators(plan["stream"])
    run.stack.template.train()
    for epoch in range(plan["epochs"]):

        def loss(
            params: Tensors, buffers: Tensors, x: torch.Tensor, y: torch.Tensor, epoch: int = epoch
        ) -> torch.Tensor:
            value = F.cross_entropy(run.forward(params, buffers, x), y)
            return value if penalty is None else value + penalty(list(params.values()), epoch)

        step = vmap(grad_and_value(loss))
        for x, y in run.batches(X, Y, plan["batch_size"], generators, offset=offset):
            grads, losses = step(run.leaves, run.buffers, x, y)
            run.step(optimizer, grads, losses, batch=y.shape[1], masks=masks, masked_decay=weight_decay)
            scheduler.step()


def _gradient_ascent(run: _StackedRun, method: Any, tasks: list[UnlearnTask]) -> None:
    from obliviate.empirical.gradient_ascent import ascent_loss

    c = method.config
    optimizer = make_optimizer("sgd", run.leaves.values(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    Xf, yf = run.forget.tensors
    generators = run.generators(method.stream)

    def loss(params: Tensors, buffers: Tensors, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = run.forward(params, buffers, x)
        return ascent_loss(logits, y), logits

    step = vmap(grad_and_value(loss, has_aux=True))
    run.stack.template.train()
    for _ in range(c.epochs):
        for x, y in run.batches(Xf, yf, c.batch_size, generators, offset=0):
            grads, (losses, logits) = step(run.leaves, run.buffers, x, y)
            run.stop_early(logits, y, c.stop_accuracy)
            if not bool(run.active.any()):
                return
            run.step(optimizer, grads, losses, batch=y.shape[1])


def _paired_ascent(run: _StackedRun, method: Any, tasks: list[UnlearnTask]) -> None:
    from obliviate.empirical.neggrad_plus import paired_objective

    c = method.config
    optimizer = make_optimizer("sgd", run.leaves.values(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    Xf, yf = run.forget.tensors
    Xr, yr = run.retain.tensors
    retain_gens, forget_gens = run.generators(method.stream), run.generators(method.stream + 1)
    forget_batches = run.cycle(Xf, yf, c.forget_batch_size, forget_gens, offset=0)

    def loss(params: Tensors, teacher: Tensors, buffers: Tensors, xr, yr, xf, yf):  # noqa: ANN001, ANN202
        student = run.model_fn(params, buffers)
        terms = method.paired_terms(run.model_fn(teacher, buffers))
        forget_logits = student(xf)
        return paired_objective(student, xr, yr, forget_logits, yf, **terms), forget_logits

    step = vmap(grad_and_value(loss, has_aux=True))
    run.stack.template.train()
    for _ in range(c.epochs):
        retain_batches = run.batches(Xr, yr, c.retain_batch_size, retain_gens, offset=len(run.forget))
        for (xr, yr_b), (xf, yf_b) in zip(retain_batches, forget_batches):
            grads, (losses, logits) = step(run.leaves, run.teacher, run.buffers, xr, yr_b, xf, yf_b)
            run.stop_early(logits, yf_b, c.stop_accuracy)
            if not bool(run.active.any()):
                return
            run.step(optimizer, grads, losses, batch=yr_b.shape[1] + yf_b.shape[1])


def _scrub(run: _StackedRun, method: Any, tasks: list[UnlearnTask]) -> None:
    from obliviate.empirical.scrub import FORGET_STREAM, RETAIN_STREAM

    c = method.config
    optimizer = make_optimizer(
        c.optimizer, run.leaves.values(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
    )
    Xf, yf = run.forget.tensors
    Xr, yr = run.retain.tensors
    forget_gens, retain_gens = run.generators(FORGET_STREAM), run.generators(RETAIN_STREAM)

    def forget_loss(params: Tensors, buffers: Tensors, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return method.forget_loss(run.forward(params, buffers, x), target)

    def retain_loss(
        params: Tensors, buffers: Tensors, x: torch.Tensor, target: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        return method.retain_loss(run.forward(params, buffers, x), target, y)

    forget_step, retain_step = vmap(grad_and_value(forget_loss)), vmap(grad_and_value(retain_loss))
    for epoch in range(1, c.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = method.lr_at(epoch)
        if epoch <= c.msteps:
            for x, _ in run.batches(Xf, yf, c.forget_batch_size, forget_gens, offset=0):
                target = _teacher_in_eval(run, x)
                grads, losses = forget_step(run.leaves, run.buffers, x, target)
                run.step(optimizer, grads, losses, batch=x.shape[1])
        for x, y in run.batches(Xr, yr, c.retain_batch_size, retain_gens, offset=len(run.forget)):
            target = _teacher_in_eval(run, x)
            grads, losses = retain_step(run.leaves, run.buffers, x, target, y)
            run.step(optimizer, grads, losses, batch=y.shape[1])


def _teacher_in_eval(run: _StackedRun, x: torch.Tensor) -> torch.Tensor:
    """The teacher's logits with the template in eval mode (SCRUB's teacher is ``original.eval()``)."""
    template = run.stack.template
    template.eval()
    target = run.teacher_logits(x)
    template.train()
    return target


_PROGRAMS: dict[str, Callable[[_StackedRun, Any, list[UnlearnTask]], None]] = {
    "finetune": _finetune_planned,
    "l1_sparse": _finetune_planned,
    "random_label": _finetune_planned,
    "salun": _finetune_planned,
    "reset_layers": _finetune_planned,
    "prune_finetune": _finetune_planned,
    "gradient_ascent": _gradient_ascent,
    "neggrad_plus": _paired_ascent,
    "kl_retain": _paired_ascent,
    "scrub": _scrub,
}


def vectorised_methods() -> tuple[str, ...]:
    """The methods :func:`unlearn_many` runs as one vectorised program (the others loop over models)."""
    return tuple(sorted(_PROGRAMS))


def _program_of(unlearner: Unlearner) -> Callable[[_StackedRun, Any, list[UnlearnTask]], None] | None:
    from obliviate.unlearning.registry import method_class

    name = getattr(unlearner, "name", "")
    if name not in _PROGRAMS or type(unlearner) is not method_class(name):
        return None
    return _PROGRAMS[name]


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
    The methods of :func:`vectorised_methods` run as one vectorised program; any other runs that
    loop itself, with a warning naming the method (``vectorised=False``). Methods that retrain get
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
    program = _program_of(unlearner)
    start = time.perf_counter()
    if program is None:
        return _loop(stack, request, data, unlearner, start)
    run = _StackedRun(stack, forget, retain, method=unlearner.name)
    recipes = [stack.recipe.with_seed(s) if stack.recipe is not None else None for s in stack.seeds]
    tasks = [
        UnlearnTask(original=stack.template, forget=forget, retain=retain, seed=s, recipe=r, method=unlearner.name)
        for s, r in zip(stack.seeds, recipes, strict=True)
    ]
    try:
        program(run, unlearner, tasks)
    finally:
        stack.template.eval()
    out = stack.with_params(run.leaves)
    _check_outputs(out, retain, unlearner.name, run.steps)
    seconds = time.perf_counter() - start
    steps = run.steps + np.array([t.gradient_steps for t in tasks])
    seen = run.seen + np.array([t.examples_seen for t in tasks])
    touched = run.touched.clone()
    position = {int(i): p for p, i in enumerate(np.concatenate([forget.ids, retain.ids]))}
    for m, task in enumerate(tasks):  # ids read by the per-model preparation (saliency passes)
        touched[m, [position[i] for i in task._touched]] = True
    cost = Cost(seconds, int(steps.max()), int(seen.max()), int(touched.sum(dim=1).max()))
    return ManyResult(out, cost, True, unlearner.name, unlearner.settings(), tuple(int(s) for s in steps))


def _loop(stack: ModelStack, request: ForgetRequest, data: Dataset, unlearner: Unlearner, start: float) -> ManyResult:
    warnings.warn(
        f"unlearn_many: method {unlearner.name!r} has no vectorised form; unlearning the {len(stack)} models one by "
        f"one (vectorised: {', '.join(vectorised_methods())}).",
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
