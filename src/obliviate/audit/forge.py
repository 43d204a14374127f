"""Forging audit: a training log without an example that lands on (almost) the same weights.

Thudi, Jia, Shumailov, Papernot, "On the Necessity of Auditable Algorithmic Definitions for
Machine Unlearning", USENIX Security 2022, Sec. 4 (forging, their Algorithm 1). A model trained by
mini-batch SGD, ``w_{t+1} = w_t - eta grad L(w_t; B_t)``, comes with a log of its batches. To
*forge* a log that never used example ``x*``, walk the log and, for each batch ``B_t`` that
contains ``x*``, pick a substitute batch ``B^`` from ``D' = D \\ {x*}`` whose SGD step best
reproduces the logged one. Thudi et al. match ``grad L(w_t; B^)`` to ``grad L(w_t; B_t)`` over a
sample of M candidate batches; here the forged run is replayed at the same time (``w'_t``) and the
candidate minimises the distance to the real next weights,
``|| w'_t - eta grad L(w'_t; B^) - w_{t+1} ||`` (the same criterion while ``w'_t = w_t``, and it
corrects drift afterwards). Candidates are M random batches of ``D'`` of the same size and every
single swap ``B_t \\ {x*} u {x'}``, ``x' in D' \\ B_t`` (exhaustive, from per-example gradients).

The forged log is an honest SGD run on ``D'``: replaying it gives the forged weights. The audit
reports the distance between the forged and the real final weights against the distance between
honest retrains on ``D'`` (same initialisation and hyperparameters, different batch orders) and
against simply dropping ``x*`` from its batches. When forged-vs-real is well below retrain-vs-retrain,
the real weights are as plausible an outcome of training without ``x*`` as any honest retrain:
inspecting weights cannot tell whether ``x*`` was used, so an unlearning claim can only be audited
through the process (the signed log), not the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError, UnknownIdsError
from obliviate.progress import progress_bar
from obliviate.training.loop import minibatches, seeded_generator

__all__ = ["ForgeResult", "SGDLog", "forge", "forging_audit", "train_logged"]

Params = dict[str, torch.Tensor]


@dataclass
class SGDLog:
    """What a logged SGD run records: the initial parameters, the learning rate and each batch's ids."""

    init: Params
    lr: float
    batches: list[np.ndarray] = field(default_factory=list)


def _check(data: Dataset, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, Dataset):
        raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}.")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout) for m in model.modules()):
        raise InvalidInputError(
            "the forging audit replays plain SGD on a function of (params, batch): use a model without BatchNorm "
            "or Dropout (their state and randomness are not in the batch log)."
        )
    X, y = data.tensors
    return X.to(torch.float64), y.long()


class _Steps:
    """Batch and per-example gradients of the mean cross-entropy, as functions of the parameters."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.double()

        def loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(functional_call(self.model, params, (x,)), y)

        self.batch_grad = grad(loss)
        self.per_example = vmap(grad(lambda p, x, y: loss(p, x[None], y[None])), in_dims=(None, 0, 0))

    def step(self, params: Params, X: torch.Tensor, y: torch.Tensor, lr: float) -> Params:
        g = self.batch_grad(params, X, y)
        return {k: v - lr * g[k] for k, v in params.items()}


def _flat(params: Params) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in params.values()])


def _flat_grads(g: Params) -> torch.Tensor:
    return torch.cat([v.reshape(v.shape[0], -1) for v in g.values()], dim=1)


def train_logged(
    model: nn.Module, data: Dataset, *, epochs: int = 10, batch_size: int = 32, lr: float = 0.1, seed: int = 0
) -> tuple[Params, SGDLog]:
    """Plain SGD (no momentum, no weight decay) from ``model``'s parameters, logging every batch's ids.

    Returns the final parameters (float64; ``model`` itself is converted to float64 in place and its
    parameters are left as they were) and the log. Batches come from
    :func:`~obliviate.training.loop.minibatches` with ``seeded_generator(seed)``.
    """
    X, y = _check(data, model)
    steps = _Steps(model)
    params = {k: v.detach().to(torch.float64).clone() for k, v in model.named_parameters()}
    log = SGDLog(init={k: v.clone() for k, v in params.items()}, lr=float(lr))
    gen = seeded_generator(seed)
    for _ in range(epochs):
        for idx in minibatches(len(data), batch_size, generator=gen):
            log.batches.append(data.ids[idx.numpy()].copy())
            params = steps.step(params, X[idx], y[idx], lr)
    return params, log


def replay(model: nn.Module, data: Dataset, log: SGDLog) -> Params:
    """Run the logged batches from the logged initial parameters: what a verifier of the log computes."""
    X, y = _check(data, model)
    steps = _Steps(model)
    params = {k: v.clone() for k, v in log.init.items()}
    for ids in log.batches:
        pos = torch.from_numpy(data.positions(ids))
        params = steps.step(params, X[pos], y[pos], log.lr)
    return params


@dataclass(frozen=True)
class ForgeResult:
    """Distances (L2 over all parameters) between final weights, and how the forgery was built."""

    forget_id: int
    steps: int
    replaced: int
    swaps_chosen: int
    forged_vs_real: float
    dropped_vs_real: float
    retrain_vs_retrain: float
    real_vs_retrain: float
    real_vs_init: float
    step_errors: list[float]

    @property
    def ratio(self) -> float:
        """Forged-vs-real distance as a fraction of the mean honest retrain-vs-retrain distance."""
        return self.forged_vs_real / self.retrain_vs_retrain

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def forge(
    model: nn.Module,
    data: Dataset,
    log: SGDLog,
    forget_id: int,
    *,
    candidates: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> tuple[SGDLog, Params, list[float], int]:
    """A log on ``data`` without ``forget_id`` that tracks ``log`` (Thudi et al. 2022, Algorithm 1).

    Returns the forged log, its final parameters, the per-replaced-step distance to the real next
    weights and how many replacements were single swaps (the rest are random batches).
    """
    X, y = _check(data, model)
    if int(forget_id) not in set(data.ids.tolist()):
        raise UnknownIdsError([forget_id], where="the logged training data")
    steps = _Steps(model)
    keep = data.ids != int(forget_id)
    rest_pos = torch.from_numpy(np.flatnonzero(keep))
    star = int(np.flatnonzero(~keep)[0])
    rng = np.random.default_rng((seed, 7))
    real = {k: v.clone() for k, v in log.init.items()}
    fake = {k: v.clone() for k, v in log.init.items()}
    forged = SGDLog(init={k: v.clone() for k, v in log.init.items()}, lr=log.lr)
    errors, swaps = [], 0
    with progress_bar("forging", total=len(log.batches), enabled=progress) as advance:
        for ids in log.batches:
            pos = data.positions(ids)
            real_next = steps.step(real, X[torch.from_numpy(pos)], y[torch.from_numpy(pos)], log.lr)
            if star not in pos:
                forged.batches.append(ids.copy())
                fake = steps.step(fake, X[torch.from_numpy(pos)], y[torch.from_numpy(pos)], log.lr)
            else:
                B = len(pos)
                target = (_flat(fake) - _flat(real_next)) / log.lr  # the mean gradient that lands on w_{t+1}
                G = _flat_grads(steps.per_example(fake, X[rest_pos], y[rest_pos]))  # (n', P) at w'_t
                in_batch = np.isin(rest_pos.numpy(), pos)
                c = G[torch.from_numpy(in_batch)].sum(0) / B - target  # swap x* for x': distance ||c + g_x' / B||
                swap_d = (c[None] + G / B).norm(dim=1)
                swap_d[torch.from_numpy(in_batch)] = torch.inf
                best_swap = int(torch.argmin(swap_d))
                draws = (
                    np.stack([rng.choice(len(rest_pos), B, replace=False) for _ in range(candidates)])
                    if candidates
                    else None
                )
                best_rand, rand_d = None, torch.inf
                if draws is not None:
                    means = G[torch.from_numpy(draws)].mean(1)
                    dist = (means - target[None]).norm(dim=1)
                    best_rand, rand_d = int(torch.argmin(dist)), float(dist.min())
                if float(swap_d[best_swap]) <= rand_d:
                    new_pos = np.append(pos[pos != star], int(rest_pos[best_swap]))
                    swaps += 1
                else:
                    new_pos = rest_pos.numpy()[draws[best_rand]]
                forged.batches.append(data.ids[new_pos].copy())
                fake = steps.step(fake, X[torch.from_numpy(new_pos)], y[torch.from_numpy(new_pos)], log.lr)
                errors.append(float((_flat(fake) - _flat(real_next)).norm()))
            real = real_next
            advance()
    return forged, fake, errors, swaps


def forging_audit(
    make_model: Callable[[], nn.Module],
    data: Dataset,
    *,
    forget_id: int | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.1,
    seed: int = 0,
    retrains: int = 3,
    candidates: int = 256,
    progress: bool = False,
) -> ForgeResult:
    """Train with a logged batch order, forge a log without ``forget_id`` and measure the distances.

    ``make_model()`` builds the architecture with its initial weights (the same every call).
    ``retrains`` honest runs on ``D \\ {forget_id}`` from the same initial weights with batch orders
    from seeds ``seed + 1 ..`` give the retrain-vs-retrain distance (mean over pairs) and the
    real-vs-retrain distance (mean). ``forget_id`` defaults to a seeded random training id.
    """
    if retrains < 2:
        raise InvalidInputError(f"retrains must be >= 2 (a retrain-vs-retrain distance needs a pair), got {retrains}.")
    if forget_id is None:
        forget_id = int(data.sample_ids(1, seed=seed)[0])
    model = make_model()
    real, log = train_logged(model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    forged_log, forged, errors, swaps = forge(
        make_model(), data, log, forget_id, candidates=candidates, seed=seed, progress=progress
    )
    check = replay(make_model(), data.without([forget_id]), forged_log)
    if not torch.equal(_flat(check), _flat(forged)):
        raise AssertionError("the forged log does not replay to the forged weights")  # a bug, not an input error
    dropped_log = SGDLog(init=log.init, lr=log.lr, batches=[b[b != forget_id] for b in log.batches])
    dropped = replay(make_model(), data.without([forget_id]), dropped_log)
    rest = data.without([forget_id])
    honest = [
        _flat(train_logged(make_model(), rest, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed + 1 + r)[0])
        for r in range(retrains)
    ]
    pairs = [float((honest[i] - honest[j]).norm()) for i in range(retrains) for j in range(i + 1, retrains)]
    w = _flat(real)
    return ForgeResult(
        forget_id=int(forget_id),
        steps=len(log.batches),
        replaced=len(errors),
        swaps_chosen=swaps,
        forged_vs_real=float((_flat(forged) - w).norm()),
        dropped_vs_real=float((_flat(dropped) - w).norm()),
        retrain_vs_retrain=float(np.mean(pairs)),
        real_vs_retrain=float(np.mean([float((h - w).norm()) for h in honest])),
        real_vs_init=float((w - _flat(log.init)).norm()),
        step_errors=errors,
    )
