"""train_many: a stack of small models trained together in one vectorised program.

Model ``i`` of ``train_many(recipe, data, seeds)`` is ``train(recipe.with_seed(seeds[i]), data)``
up to float rounding: the same initial weights (built from each seed), the same per-model epoch
order (each seed's ``seeded_generator(seed, 1)`` permutation), the same optimiser and schedule.

How: the models' parameters are stacked along a new first axis (``torch.func.stack_module_state``)
into leaf tensors ``theta[M, ...]``; one step evaluates ``vmap(grad(L))`` over the stack, where
``L_m = CE(f(theta_m; x_m), y_m)`` is model ``m``'s batch-mean cross-entropy on *its own* batch
``x_m``, and the recipe's own ``torch.optim`` optimiser (SGD with momentum and weight decay, or
Adam) steps the stacked leaves. Those optimisers are elementwise, so stepping ``theta[M, ...]`` with
the stacked per-model gradients ``grad_theta sum_m L_m = (grad L_1, ..., grad L_M)`` is each
model's own step; the schedule is the same function of the step count for every model.

BatchNorm: each model keeps its own running statistics. Inside the vmapped step a model is a
:class:`FunctionalModel` over a private copy of its buffers; a forward pass in training mode
updates that copy as the module would update its own, and the step writes the copies back, so
model ``i``'s running mean and variance are those ``train`` gives it.

Models are trained ``chunk`` at a time (a chunk is a full training run of that many models), so
that one chunk's weights and optimiser state stay in cache between steps.

The direct path. When the template has a ``stacked_forward(params, x)`` (the MLP and the small CNN,
:mod:`obliviate.models.stacked`) and no buffers, a step does not go through ``vmap``: the stacked
forward evaluates every model's logits with a few large operations (feature-major ``baddbmm`` for
Linear layers, one grouped convolution for a stack of convolutions), ``L = sum_m L_m`` with
``L_m`` model ``m``'s batch-mean cross-entropy (:func:`stacked_cross_entropy`), and one ``backward``
of ``L`` gives every model its own gradient (``dL/dtheta_m = dL_m/dtheta_m``: the models share no
parameter); the MLP skips autograd altogether (``MLP.stacked_vjp``: the written-out backward of its
Linear-ReLU chain fed by the closed-form cross-entropy gradient ``(softmax - onehot) / b``, tested
against autograd). Same loss, same batches, same optimiser; the products are summed in another order, so
the weights agree with the ``vmap`` path and with ``train`` up to float rounding. Batches are
gathered with one ``index_select`` per step, and the divergence check reads the losses every
:data:`CHECK_EVERY` steps (:class:`StackFiniteWatch`), naming the same step and model as a
per-step check would.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from obliviate.data.dataset import Dataset
from obliviate.errors import (
    DivergedError,
    InvalidInputError,
    NotVectorisableError,
)
from obliviate.models import SOLVER_MODELS, build_model
from obliviate.progress import progress_bar
from obliviate.storage import attach_spec, spec_of
from obliviate.training.loop import FiniteWatch, make_optimizer, make_scheduler, minibatches, seeded_generator
from obliviate.training.recipe import Recipe

__all__ = [
    "ModelStack",
    "NotVectorisableError",
    "train_many",
    "check_seeds",
    "cross_entropy",
    "stacked_batches",
    "DEFAULT_CHUNK",
    "FunctionalModel",
    "stacked_objective",
    "stacked_cross_entropy",
    "stacked_cross_entropy_and_grad",
    "stacked_forward_of",
    "StackFiniteWatch",
    "STACKED_CHUNK",
]

# Models per vmap call: large enough that each op's work outweighs its dispatch, small enough that
# a chunk's activations stay in cache; measured on the digits MLP (benchmarks/train_many_probe.py).
DEFAULT_CHUNK = 256
#: Models per chunk on the direct path (a template with ``stacked_forward``): a chunk's weights and
#: activations stay in the core's 2 MB L2 cache. Whole train_many runs of 256 digits MLPs (30 epochs,
#: CPU time, load 5): 32 a chunk 35 GFLOP/s, 64 39, 128 30, 256 29.
STACKED_CHUNK = 64
#: Use a template's ``stacked_forward`` when it has one (the direct path); False forces ``vmap``
#: (to measure one against the other in the same run).
STACKED_FORWARD = True
#: Steps between two reads of the stacked losses by the divergence check.
CHECK_EVERY = 32

Tensors = dict[str, torch.Tensor]


def check_seeds(seeds: Any) -> tuple[int, ...]:
    """Seeds as a tuple of distinct non-negative Python ints; a clear error otherwise."""
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        raise InvalidInputError(
            f"seeds must be a sequence of integers, got the single integer {seeds}; use range({seeds})."
        )
    try:
        values = list(seeds)
    except TypeError as exc:
        raise InvalidInputError(f"seeds must be a sequence of integers, got {type(seeds).__name__}.") from exc
    if not values:
        raise InvalidInputError("seeds is empty: give at least one seed, e.g. range(8).")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0:
            raise InvalidInputError(f"seeds must be non-negative integers, got {s!r}.")
    out = tuple(int(s) for s in values)
    if len(set(out)) != len(out):
        dup = sorted({s for s in out if out.count(s) > 1})
        raise InvalidInputError(f"seeds repeat {dup[:10]}: each seed names one model; pass distinct seeds.")
    return out


def stacked_batches(generators: Sequence[torch.Generator], n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """One epoch of per-model batches: ``[M, b]`` row indices, row ``m`` drawn by ``generators[m]``.

    Row ``m`` of each yield is exactly what :func:`~obliviate.training.loop.minibatches` yields
    with ``generators[m]``: one ``randperm(n)`` per model, cut at the same batch boundaries (a
    trailing one-example batch merged into the one before).
    """
    orders = torch.stack([torch.randperm(n, generator=g) for g in generators])
    for cut in minibatches(n, batch_size, shuffle=False):
        yield orders[:, cut[0] : cut[-1] + 1]


class FunctionalModel:
    """One model of a stack, inside ``vmap``, as a callable: ``model(x)`` is the template's forward
    with this model's ``params`` and a private copy of its ``buffers``.

    What a loss written for a module needs: ``model(x)`` gives logits and ``model.parameters()``
    the weight tensors. A forward pass in the template's training mode updates BatchNorm's running
    statistics in :attr:`buffers` exactly as ``module(x)`` updates the module's own.
    """

    def __init__(
        self, forward: Callable[[Tensors, Tensors, torch.Tensor], torch.Tensor], params: Tensors, buffers: Tensors
    ) -> None:
        self.forward, self.params = forward, params
        self.buffers = {k: v.clone() for k, v in buffers.items()}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(self.params, self.buffers, x)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())


def stacked_objective(
    forward: Callable[[Tensors, Tensors, torch.Tensor], torch.Tensor], objective: Callable[..., Any]
) -> tuple[Callable[..., tuple[Tensors, torch.Tensor, Any, Tensors]], list[bool]]:
    """``vmap(grad_and_value)`` of ``objective(model, *args)`` over a stack.

    ``objective`` is written for one model (a module or a :class:`FunctionalModel`) and returns its
    loss, or ``(loss, aux)``. The returned function maps ``(params[M], buffers[M], *args[M])`` to
    ``(grads[M], losses[M], aux[M] or (), buffers[M] after the forward passes)``; the list holds
    one flag, set on the first call: whether ``objective`` returned an ``aux``.
    """
    has_aux: list[bool] = []

    def one(params: Tensors, buffers: Tensors, *args: Any) -> tuple[torch.Tensor, tuple[Any, Tensors]]:
        model = FunctionalModel(forward, params, buffers)
        out = objective(model, *args)
        if not has_aux:
            has_aux.append(isinstance(out, tuple))
        value, aux = out if isinstance(out, tuple) else (out, ())
        return value, (aux, model.buffers)

    step = vmap(grad_and_value(one, has_aux=True))

    def run(params: Tensors, buffers: Tensors, *args: Any) -> tuple[Tensors, torch.Tensor, Any, Tensors]:
        grads, (values, (aux, new_buffers)) = step(params, buffers, *args)
        return grads, values, aux, new_buffers

    return run, has_aux


class ModelStack:
    """``M`` models of one architecture as stacked tensors ``params[name]: [M, ...]``.

    ``model(i)`` is model ``i`` as a standalone module (eval mode); ``logits(X)`` runs all models
    on the same inputs at once (the template's ``stacked_forward`` where it has one, else one vmapped
    ``functional_call``).
    """

    def __init__(
        self,
        template: nn.Module,
        params: Mapping[str, torch.Tensor],
        buffers: Mapping[str, torch.Tensor] | None = None,
        *,
        seeds: Sequence[int],
        recipe: Recipe | None = None,
    ) -> None:
        self.params: Tensors = {k: v.detach() for k, v in params.items()}
        self.buffers: Tensors = {k: v.detach() for k, v in (buffers or {}).items()}
        sizes = {v.shape[0] for v in (*self.params.values(), *self.buffers.values())}
        if len(sizes) != 1:
            raise InvalidInputError(f"every stacked tensor needs the same number of models, got sizes {sorted(sizes)}.")
        self.seeds = tuple(int(s) for s in seeds)
        if len(self.seeds) != sizes.pop():
            raise InvalidInputError(f"{len(self.seeds)} seeds for a stack of {len(self)} models.")
        self.recipe = recipe
        self.template = template.eval()

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def __repr__(self) -> str:
        name = self.recipe.model if self.recipe is not None else type(self.template).__name__
        return f"ModelStack({len(self)} x {name}, seeds={self.seeds[:4]}{'...' if len(self) > 4 else ''})"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_models(
        cls, models: Sequence[nn.Module], *, seeds: Sequence[int] | None = None, recipe: Recipe | None = None
    ) -> ModelStack:
        """Stack models of one architecture (same parameter names and shapes).

        ``seeds`` default to each model's recipe seed when every model carries obliviate's spec,
        else to ``0..M-1``; ``recipe`` defaults to the models' shared recipe (seed aside).
        """
        models = list(models)
        if not models or not all(isinstance(m, nn.Module) for m in models):
            raise InvalidInputError("from_models needs a non-empty list of torch.nn.Module models.")
        shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
        if any(s != shapes[0] or type(m) is not type(models[0]) for s, m in zip(shapes, models, strict=True)):
            raise InvalidInputError("from_models needs models of one architecture (same class, names and shapes).")
        specs = [spec_of(m) for m in models]
        if seeds is None:
            known = all(s is not None and s.get("recipe") for s in specs)
            seeds = [int(s["recipe"]["seed"]) for s in specs] if known else list(range(len(models)))  # type: ignore[index]
        if recipe is None and all(s is not None and s.get("recipe") for s in specs):
            recipes = {Recipe.from_dict({**s["recipe"], "seed": 0}) for s in specs}  # type: ignore[index]
            recipe = recipes.pop() if len(recipes) == 1 else None
        params, buffers = stack_module_state(models)
        return cls(copy.deepcopy(models[0]), params, buffers, seeds=seeds, recipe=recipe)

    def subset(self, indices: Sequence[int] | slice) -> ModelStack:
        """The models at ``indices`` (positions in the stack, in that order)."""
        idx = list(range(len(self)))[indices] if isinstance(indices, slice) else [int(i) for i in indices]
        if not idx or any(not -len(self) <= i < len(self) for i in idx):
            raise InvalidInputError(
                f"subset indices must be non-empty positions in 0..{len(self) - 1}, got {idx[:10]}."
            )
        at = torch.tensor(idx)
        return ModelStack(
            self.template,
            {k: v[at] for k, v in self.params.items()},
            {k: v[at] for k, v in self.buffers.items()},
            seeds=[self.seeds[i] for i in idx],
            recipe=self.recipe,
        )

    def with_params(
        self, params: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor] | None = None
    ) -> ModelStack:
        """The same models' seeds and recipe with new stacked weights (e.g. after unlearning)."""
        return ModelStack(
            self.template, params, self.buffers if buffers is None else buffers, seeds=self.seeds, recipe=self.recipe
        )

    # ------------------------------------------------------------------ reading
    def model(self, i: int) -> nn.Module:
        """Model ``i`` as a standalone module in eval mode (a copy: changing it leaves the stack alone)."""
        if not -len(self) <= int(i) < len(self):
            raise InvalidInputError(f"model index {i} is outside the stack of {len(self)} models.")
        module = copy.deepcopy(self.template)
        with torch.no_grad():
            for name, t in (*module.named_parameters(), *module.named_buffers()):
                source = self.params.get(name, self.buffers.get(name))
                t.copy_(source[int(i)])
        spec = spec_of(self.template)
        if self.recipe is not None and spec is not None:
            attach_spec(
                module,
                recipe=self.recipe.with_seed(self.seeds[int(i)]),
                input_shape=tuple(spec["input_shape"]),
                num_classes=int(spec["num_classes"]),
            )
        return module.eval()

    def forward_fn(self) -> Callable[[Tensors, Tensors, torch.Tensor], torch.Tensor]:
        """``f(params_m, buffers_m, x) -> logits`` for one model, to be vmapped over the stack."""
        base = self.template

        def forward(params: Tensors, buffers: Tensors, x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (params, buffers), (x,))

        return forward

    @torch.no_grad()
    def logits(
        self, X: torch.Tensor | np.ndarray, *, batch_size: int | None = None, models_per_call: int = 128
    ) -> torch.Tensor:
        """Every model's logits on the same inputs ``X``: a ``[M, N, C]`` tensor (eval mode, no grad)."""
        X = torch.as_tensor(X, dtype=torch.float32)
        if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
            raise InvalidInputError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
        step = len(X) if batch_size is None else int(batch_size)
        direct = stacked_forward_of(self.template)
        vmapped = vmap(self.forward_fn(), in_dims=(0, 0, None))

        def run(p: Tensors, b: Tensors, x: torch.Tensor) -> torch.Tensor:
            return direct(p, x, shared=True) if direct is not None else vmapped(p, b, x)

        self.template.eval()
        rows = []
        for start in range(0, len(self), models_per_call):
            at = slice(start, start + models_per_call)
            p = {k: v[at] for k, v in self.params.items()}
            b = {k: v[at] for k, v in self.buffers.items()}
            rows.append(torch.cat([run(p, b, X[i : i + step]) for i in range(0, len(X), max(step, 1))], dim=1))
        return torch.cat(rows)


# ---------------------------------------------------------------------- training
def check_vectorisable(recipe: Recipe) -> None:
    """Refuse recipes that are not gradient training of a torch model (solver models, DP-SGD)."""
    if recipe.model in SOLVER_MODELS:
        raise NotVectorisableError(
            f"{recipe.model!r} is fitted by its certified solver, not by minibatch SGD, so it cannot be trained "
            "as a vmapped stack; train each seed with ob.train(recipe.with_seed(s), data)."
        )
    if recipe.privacy is not None:
        raise NotVectorisableError(
            "a privacy=DP(...) recipe trains with Opacus DP-SGD (per-example clipping, Poisson batches, a privacy "
            "record per model), which train_many does not vectorise; train each seed with ob.train, or drop privacy."
        )


def stacked_forward_of(template: nn.Module) -> Callable[..., torch.Tensor] | None:
    """The template's ``stacked_forward(params, x, *, shared=False) -> [M, b, classes]``, or None.

    None (the ``vmap`` path) when the template has none, when it has buffers (BatchNorm statistics
    are updated per model inside ``vmap``), or when :data:`STACKED_FORWARD` is off.
    """
    fn = getattr(template, "stacked_forward", None)
    if not STACKED_FORWARD or not callable(fn) or any(True for _ in template.buffers()):
        return None
    return fn


def _check_chunk(chunk: Any, m: int, template: nn.Module | None = None) -> int:
    if chunk is None:
        default = STACKED_CHUNK if template is not None and stacked_forward_of(template) is not None else DEFAULT_CHUNK
        return min(default, m)
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise InvalidInputError(f"chunk (models per vmap call) must be a positive integer or None, got {chunk!r}.")
    return min(int(chunk), m)


def train_many(
    recipe: Recipe,
    data: Dataset,
    seeds: Sequence[int],
    *,
    show_progress: bool = False,
    chunk: int | None = None,
) -> ModelStack:
    """Train ``len(seeds)`` models of ``recipe`` on ``data`` at once; model ``i`` uses ``seeds[i]``.

    Equal, up to float rounding, to ``[train(recipe.with_seed(s), data) for s in seeds]``. ``chunk``
    models are trained together (default :data:`STACKED_CHUNK` on the direct path, else
    :data:`DEFAULT_CHUNK` per ``vmap`` call). Solver models and DP recipes are
    refused with :class:`NotVectorisableError` (train them one by one with :func:`~obliviate.train`).
    """
    if not isinstance(recipe, Recipe):
        raise InvalidInputError(f"recipe must be an obliviate.Recipe, got {type(recipe).__name__}.")
    if not isinstance(data, Dataset):
        raise InvalidInputError(
            f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays."
        )
    if len(data) == 0:
        raise InvalidInputError("cannot train on an empty dataset.")
    check_vectorisable(recipe)
    seeds = check_seeds(seeds)
    data = data.sorted_by_id()
    models = [
        attach_spec(
            build_model(recipe.model, data.input_shape, data.num_classes, seed=s, options=recipe.options),
            recipe=recipe.with_seed(s),
            input_shape=data.input_shape,
            num_classes=data.num_classes,
        )
        for s in seeds
    ]
    stack = ModelStack.from_models(models, seeds=seeds, recipe=recipe.with_seed(0))
    per_call = _check_chunk(chunk, len(seeds), stack.template)
    groups = [range(i, min(i + per_call, len(seeds))) for i in range(0, len(seeds), per_call)]
    params: dict[str, list[torch.Tensor]] = {k: [] for k in stack.params}
    buffers: dict[str, list[torch.Tensor]] = {k: [] for k in stack.buffers}
    with progress_bar(
        f"training {len(seeds)} models", total=recipe.epochs * len(groups), enabled=show_progress
    ) as advance:
        for group in groups:
            part = stack.subset(list(group))
            trained, stats = _fit_stack(part, data, recipe, on_epoch=advance)
            for k, v in trained.items():
                params[k].append(v)
            for k, v in stats.items():
                buffers[k].append(v)
    return stack.with_params(
        {k: torch.cat(v) for k, v in params.items()}, {k: torch.cat(v) for k, v in buffers.items()}
    )


def _fit_stack(
    stack: ModelStack, data: Dataset, recipe: Recipe, *, on_epoch: Callable[[], None]
) -> tuple[Tensors, Tensors]:
    """The trainer's loop (:func:`obliviate.training.trainer.fit`) on a stack; the trained weights and buffers."""
    X, y = data.tensors
    n = len(data)
    direct = stacked_forward_of(stack.template)
    vjp = getattr(stack.template, "stacked_vjp", None) if direct is not None else None
    leaves = {k: v.clone().requires_grad_(direct is not None and vjp is None) for k, v in stack.params.items()}
    buffers = {k: v.clone() for k, v in stack.buffers.items()}
    step_fn, _ = stacked_objective(stack.forward_fn(), lambda model, x, t: cross_entropy(model(x), t))
    optimizer = stack_optimizer(
        recipe.optimizer,
        leaves.values(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        fused=True if direct is not None else None,
    )
    batches_per_epoch = sum(1 for _ in minibatches(n, recipe.batch_size, shuffle=False))
    scheduler = make_scheduler(recipe.schedule, optimizer, batches_per_epoch * recipe.epochs)
    generators = [seeded_generator(s, stream=1) for s in stack.seeds]
    watch = StackFiniteWatch(stack.seeds, where="training", lr=recipe.lr)
    stack.template.train()
    step = 0
    for _ in range(recipe.epochs):
        for idx in stacked_batches(generators, n, recipe.batch_size):
            if direct is not None:
                flat = idx.reshape(-1)
                xb = X.index_select(0, flat).view(*idx.shape, *X.shape[1:])
                yb = y.index_select(0, flat).view(idx.shape)
                if vjp is not None:  # explicit backward: no autograd graph (the MLP)
                    logits, backward = vjp(leaves, xb)
                    losses, g = stacked_cross_entropy_and_grad(logits, yb)
                    for k, gk in backward(g).items():
                        leaves[k].grad = gk
                else:
                    losses = stacked_cross_entropy(direct(leaves, xb), yb)
                    for p in leaves.values():
                        p.grad = None
                    losses.sum().backward()
            else:
                grads, losses, _, buffers = step_fn(leaves, buffers, X[idx], y[idx])
                for k, p in leaves.items():
                    p.grad = grads[k]
            watch(losses, step)
            optimizer.step()
            scheduler.step()
            step += 1
        watch.flush()
        on_epoch()
    stack.template.eval()
    return {k: v.detach() for k, v in leaves.items()}, buffers


class StackFiniteWatch(FiniteWatch):
    """:func:`check_stack_finite`, batched as :class:`~obliviate.training.loop.FiniteWatch` batches
    :func:`~obliviate.training.loop.check_finite`: the ``[M]`` losses are read every ``every``
    (default :data:`CHECK_EVERY`) steps and at :meth:`flush`, and :class:`DivergedError` names the
    first step with a non-finite loss and the first model (by seed) at that step, as a check after
    every step would. Steps taken after that one only carry the NaN on.
    """

    def __init__(self, seeds: Sequence[int], *, where: str, lr: float | None = None, every: int | None = None) -> None:
        super().__init__(where=where, lr=lr, every=CHECK_EVERY if every is None else int(every))
        self.seeds = tuple(seeds)

    def flush(self) -> None:
        if not self._losses:
            return
        kept = torch.stack(self._losses)
        steps, self._steps, self._losses = self._steps, [], []
        if bool(torch.isfinite(kept).all()):
            return
        row = int((~torch.isfinite(kept)).any(dim=1).nonzero()[0, 0])
        check_stack_finite(kept[row], self.seeds, step=steps[row], where=self.where, lr=self.lr)


#: Step the stacked weights with torch's fused SGD/Adam kernels (one pass over each tensor instead of
#: one per update term) on the ``vmap`` path. Off there: the optimiser is only 7-15% of a vmapped
#: step, and whole train_many runs showed no gain beyond the shared machine's noise (64 models x 30
#: epochs: 13.4 s plain, 14.0 s fused; benchmarks/nips_profile.py --train-many 64). The direct path
#: always steps fused: its step is 3x shorter, and the fused step saves 5-8% of it
#: (benchmarks/nips_speed_probe.py).
FUSED_OPTIMISER = False


def stack_optimizer(
    name: str,
    params: Any,
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """:func:`~obliviate.training.loop.make_optimizer`'s optimiser; fused when ``fused`` (default
    :data:`FUSED_OPTIMISER`). The same update rule, one kernel per tensor."""
    params = list(params)
    fused = FUSED_OPTIMISER if fused is None else fused
    if fused and name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True)
    if fused and name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    return make_optimizer(name, params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(logits, y)`` (batch mean of ``-log softmax(z)_y``), computed classes-first.

    The same value: torch's CPU ``log_softmax`` over a short last axis (10 classes) runs row by row
    and took 3x longer than the rest of a vmapped MLP step; over the first axis of the transposed
    view it is vectorised across the batch.
    """
    log_p = torch.log_softmax(logits.t(), dim=0)
    return -log_p.gather(0, y[None]).mean()


def stacked_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each model's :func:`cross_entropy`: ``logits[M, b, C]``, ``y[M, b]`` -> the ``[M]`` batch-mean losses.

    ``L_m = -(1/b) sum_i log softmax(z_mi)_{y_mi}``, classes-first like :func:`cross_entropy`
    (``log_softmax`` over the classes axis of the ``[M, C, b]`` view, the memory layout the stacked
    forwards produce).
    """
    return -_log_p(logits).gather(1, y.unsqueeze(1)).mean(dim=(1, 2))


def stacked_cross_entropy_and_grad(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`stacked_cross_entropy` without autograd, and its gradient with respect to ``logits``.

    The gradient of ``sum_m L_m`` is, per model ``m`` and example ``i``, the closed form
    ``(softmax(z_mi) - onehot(y_mi)) / b`` (returned as ``[M, b, C]``, a view of ``[M, C, b]``).
    """
    with torch.no_grad():
        log_p = _log_p(logits)
        index = y.unsqueeze(1)
        losses = -log_p.gather(1, index).mean(dim=(1, 2))
        grad = log_p.exp_()
        grad.scatter_add_(1, index, torch.full(index.shape, -1.0, dtype=grad.dtype))
        grad.div_(y.shape[-1])
    return losses, grad.transpose(1, 2)


def _log_p(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.transpose(1, 2), dim=1)


def check_stack_finite(
    losses: torch.Tensor, seeds: Sequence[int], *, step: int, where: str, lr: float | None = None
) -> None:
    """Raise :class:`DivergedError` naming the first model (by seed) whose loss is NaN or infinite."""
    bad = ~torch.isfinite(losses.detach())
    if bool(bad.any()):
        m = int(bad.nonzero()[0, 0])
        raise DivergedError(f"{where} (model with seed {seeds[m]})", step, float(losses[m]), lr)
