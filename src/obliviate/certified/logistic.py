"""L2-regularised logistic regression trained for certified removal (Guo et al. ICML 2020).

Guo, Goldstein, Hannun, van der Maaten, "Certified Data Removal from Machine Learning Models",
ICML 2020 (reference code: facebookresearch/certified-removal, ``test_removal.py``).

Training minimises the loss-perturbed objective (Sec. 3.2, Algorithm 1)::

    L_b(w; D) = sum_i l(w.x_i, y_i) + (lambda n / 2) ||w||^2 + b.w,    b ~ N(0, sigma^2 I)

with ``l(z, y) = log(1 + exp(-y z))``, ``y in {-1, +1}``, and features scaled to ``||x_i|| <= 1``
(the paper L2-normalises them; so does this model). Multiclass problems train K one-vs-rest
binary models (Sec. 5), each with its own column of ``b``.

Removing a set of points ``D_f`` is one Newton step on the remaining data ``D' = D \\ D_f``
(Sec. 3, eq. (2); batched removal as in Sec. 3.3)::

    Delta = |D_f| lambda w + sum_{j in D_f} grad l(w.x_j, y_j),   w <- w + H^-1 Delta

with ``H`` the Hessian of ``L(.; D')`` at ``w``. Its gradient residual ``||grad L_b(w-; D')||`` is
bounded by the data-dependent bound of Corollary 1, ``gamma ||X||_2 ||H^-1 Delta|| ||X H^-1 Delta||``
with ``gamma = 1/4`` for the logistic loss and X the remaining features. Residuals of successive
removals add up (the residual left by one step is carried into the next). Theorem 3: if the
accumulated residual is at most ``eps'`` and ``sigma = c eps' / epsilon``, the model is an
(epsilon, delta)-certified removal of ``D_f`` with ``delta = 1.5 exp(-c^2 / 2)``. So the removal
budget is ``sigma epsilon / c``; once the next removal would exceed it the model is retrained from
scratch on the remaining data with fresh noise (policy ``retrain``) or the removal is refused
(policy ``refuse``, :class:`~obliviate.errors.BudgetExhaustedError`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import expit
from torch import nn

from obliviate.data.dataset import Dataset, _as_id_array
from obliviate.errors import (
    AlreadyRemovedError,
    BudgetExhaustedError,
    ForgetAllError,
    InvalidInputError,
    UnknownIdsError,
)

__all__ = [
    "GAMMA",
    "POLICIES",
    "AlreadyRemovedError",
    "CertifiedLogisticRegression",
    "NewtonStep",
    "Removal",
    "c_for_delta",
    "fit_certified",
    "fit_logistic",
    "newton_removal",
    "objective_gradient",
]

GAMMA = 0.25  # Lipschitz constant of l'' for the logistic loss used by Guo et al. (Corollary 1)
POLICIES = ("retrain", "refuse")
_GTOL = 1e-10  # relative gradient tolerance of the solver (times lambda n)


# ---------------------------------------------------------------------------- the math
def _margins(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    return Y * (X @ W)


def objective_gradient(X: np.ndarray, Y: np.ndarray, W: np.ndarray, lam: float, b: np.ndarray | None = None) -> np.ndarray:
    """``grad L_b(W; D)`` per one-vs-rest column: ``X^T (-Y sigma(-Y XW)) + lambda n W + b`` (d, K)."""
    g = X.T @ (-Y * expit(-_margins(X, Y, W))) + lam * X.shape[0] * W
    return g if b is None else g + b


def _objective(X: np.ndarray, Y: np.ndarray, W: np.ndarray, lam: float, b: np.ndarray) -> float:
    return float(np.logaddexp(0.0, -_margins(X, Y, W)).sum() + 0.5 * lam * X.shape[0] * (W * W).sum() + (b * W).sum())


def _curvature(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``l''(w.x_i) = sigma(z) sigma(-z)`` for every example and column (labels do not matter)."""
    z = X @ W
    return expit(z) * expit(-z)


def _hessians(X: np.ndarray, W: np.ndarray, lam: float) -> np.ndarray:
    """The K Hessians ``X^T diag(l'') X + lambda n I`` of ``L(W; D)``, shape (K, d, d)."""
    s = _curvature(X, W)
    n, d = X.shape
    H = np.stack([(X * s[:, k : k + 1]).T @ X for k in range(s.shape[1])])
    H += lam * n * np.eye(d)[None]
    return H


def _hvp(X: np.ndarray, s: np.ndarray, lam: float, V: np.ndarray) -> np.ndarray:
    """Hessian-vector products for all K columns at once: ``X^T (s * (X V)) + lambda n V``."""
    return X.T @ (s * (X @ V)) + lam * X.shape[0] * V


def fit_logistic(
    X: np.ndarray, Y: np.ndarray, lam: float, b: np.ndarray | None = None, *, W0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The minimiser of ``L_b`` on (X, Y) in float64, and its final gradient (d, K).

    scipy's L-BFGS on the flattened (d, K) weights, then Newton iterations (the objective is
    strongly convex, so they converge quadratically from L-BFGS's point) until every column's
    gradient norm is below ``1e-10 lambda n``. The returned gradient is the residual the
    certificate starts from.
    """
    n, d = X.shape
    K = Y.shape[1]
    b = np.zeros((d, K)) if b is None else b
    scale = lam * n

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        W = flat.reshape(d, K)
        return _objective(X, Y, W, lam, b), objective_gradient(X, Y, W, lam, b).ravel()

    start = np.zeros(d * K) if W0 is None else W0.ravel()
    res = minimize(fun, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-8 * scale, "ftol": 0.0})
    W = res.x.reshape(d, K)
    G = objective_gradient(X, Y, W, lam, b)
    for _ in range(20):
        if np.linalg.norm(G, axis=0).max() <= _GTOL * scale:
            break
        W = W - np.linalg.solve(_hessians(X, W, lam), G.T[..., None])[..., 0].T
        G = objective_gradient(X, Y, W, lam, b)
    return W, G


@dataclass(frozen=True)
class NewtonStep:
    """One Newton removal: the update ``H^-1 Delta`` (d, K) and the residual bound per column (K,)."""

    update: np.ndarray
    bound: np.ndarray
    solve_residual: np.ndarray
    iterations: int


def newton_removal(
    X_rem: np.ndarray,
    Y_rem: np.ndarray,
    X_del: np.ndarray,
    Y_del: np.ndarray,
    W: np.ndarray,
    lam: float,
    *,
    x_norm: float | None = None,
    precond: np.ndarray | None = None,
    max_iter: int = 50,
) -> NewtonStep:
    """The Newton step removing (X_del, Y_del) from a model ``W`` of (X_rem + X_del), with its bound.

    ``Delta = k lambda W + X_del^T (-Y_del sigma(-Y_del X_del W))`` (Guo et al. eq. (2), for k points
    at once); ``H^-1 Delta`` is solved per column by preconditioned conjugate gradients (to 1e-8 of ||Delta||) on exact
    Hessian-vector products of the remaining data (``precond``: inverse Hessians (K, d, d) from an
    earlier state; without one the exact Hessians are built and inverted). The bound per column is
    Corollary 1's ``gamma max_i||x_i|| ||X||_2 ||s|| ||X s||`` (``max_i||x_i|| = 1`` for normalised
    features, as the paper assumes) plus ``||H s - Delta||``, the linear solve's own residual, so it
    bounds the gradient residual whatever the solver's accuracy. ``x_norm`` is an upper bound on
    ``||X_rem||_2`` (the training set's norm bounds every subset's); computed exactly when omitted.
    """
    k = X_del.shape[0]
    delta = k * lam * W + X_del.T @ (-Y_del * expit(-_margins(X_del, Y_del, W)))
    s = _curvature(X_rem, W)
    if precond is None:
        precond = np.linalg.inv(_hessians(X_rem, W, lam))
    # preconditioned CG, all K independent systems at once
    S = np.zeros_like(delta)
    R = delta.copy()
    Z = np.einsum("kij,jk->ik", precond, R)
    P = Z.copy()
    rz = (R * Z).sum(0)
    tol = 1e-8 * np.maximum(np.linalg.norm(delta, axis=0), 1e-300)
    it = 0
    while it < max_iter and np.any(np.linalg.norm(R, axis=0) > tol):
        HP = _hvp(X_rem, s, lam, P)
        curv = (P * HP).sum(0)
        alpha = np.divide(rz, curv, out=np.zeros_like(rz), where=curv > 0)
        S += alpha * P
        R -= alpha * HP
        Z = np.einsum("kij,jk->ik", precond, R)
        rz_new = (R * Z).sum(0)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        P = Z + beta * P
        rz = rz_new
        it += 1
    solve_res = np.linalg.norm(_hvp(X_rem, s, lam, S) - delta, axis=0)
    if x_norm is None:
        x_norm = math.sqrt(max(float(np.linalg.eigvalsh(X_rem.T @ X_rem)[-1]), 0.0))
    row_max = float(np.sqrt((X_rem * X_rem).sum(1).max())) if len(X_rem) else 0.0
    bound = GAMMA * row_max * x_norm * np.linalg.norm(S, axis=0) * np.linalg.norm(X_rem @ S, axis=0) + solve_res
    return NewtonStep(update=S, bound=bound, solve_residual=solve_res, iterations=it)


def c_for_delta(delta: float) -> float:
    """The smallest ``c`` with ``1.5 exp(-c^2 / 2) <= delta`` (Guo et al. Theorem 3)."""
    return math.sqrt(2.0 * math.log(1.5 / delta))


def _signed_labels(y: np.ndarray, num_classes: int) -> np.ndarray:
    """+-1 targets: one column (class 1 positive) for two classes, K one-vs-rest columns otherwise."""
    if num_classes == 2:
        return np.where(y == 1, 1.0, -1.0)[:, None]
    Y = -np.ones((len(y), num_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Removal:
    """What one removal did: how many points, the residual bound it added, whether it retrained."""

    count: int
    bound: float
    retrained: bool
    spent: float
    budget: float


class CertifiedLogisticRegression(nn.Module):
    """Loss-perturbed L2 logistic regression that removes points with a certificate (Guo et al. 2020).

    ``forward(x)`` applies the frozen ``features`` extractor (if any), flattens, L2-normalises each
    row and returns logits (n, classes): ``[0, w.x]`` for two classes (so the softmax is the logistic
    probability), the K one-vs-rest scores otherwise. Build one with :func:`fit_certified`.

    The model carries its certificate state: ``lam``, ``sigma``, ``c``, ``epsilon``, ``delta``, the
    noise ``b``, the accumulated residual bound per one-vs-rest column (``residual``; ``spent`` is
    its norm, the residual of the concatenated gradient), ``budget = sigma epsilon / c``, the ids it
    was trained on and those removed. It also keeps the normalised training features, because a
    Newton removal needs the Hessian on the remaining data.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_classes: int,
        train_ids: np.ndarray,
        train_X: np.ndarray,
        train_y: np.ndarray,
        lam: float,
        sigma: float,
        c: float,
        epsilon: float,
        delta: float,
        seed: int,
        policy: str,
        features: nn.Module | None,
    ) -> None:
        super().__init__()
        cols = 1 if num_classes == 2 else num_classes
        self.features = features
        self.num_classes = int(num_classes)
        self.lam, self.sigma, self.c = float(lam), float(sigma), float(c)
        self.epsilon, self.delta = float(epsilon), float(delta)
        self.seed, self.policy = int(seed), policy
        self.retrains = 0
        self.secure = False  # True: noise b from OS entropy, not from the seed (see fit_certified)
        self.removals: list[Removal] = []
        self.weight = nn.Parameter(torch.zeros(dim, cols, dtype=torch.float64), requires_grad=False)
        self.register_buffer("b", torch.zeros(dim, cols, dtype=torch.float64))
        self.register_buffer("residual", torch.zeros(cols, dtype=torch.float64))
        self.register_buffer("train_ids", torch.from_numpy(np.asarray(train_ids, dtype=np.int64).copy()))
        self.register_buffer("active", torch.ones(len(train_ids), dtype=torch.bool))
        self.register_buffer("train_X", torch.from_numpy(np.asarray(train_X, dtype=np.float64)))
        self.register_buffer("train_y", torch.from_numpy(np.asarray(train_y, dtype=np.int64).copy()))
        self.register_buffer("precond", torch.zeros(cols, dim, dim, dtype=torch.float64))
        self.x_norm = 0.0

    # ------------------------------------------------------------------ views
    @property
    def budget(self) -> float:
        """The residual budget ``sigma epsilon / c`` (Guo et al. Theorem 3)."""
        return self.sigma * self.epsilon / self.c

    @property
    def spent(self) -> float:
        """Accumulated gradient-residual bound of the concatenated one-vs-rest gradient."""
        return float(torch.linalg.vector_norm(self.residual))

    @property
    def remaining_budget(self) -> float:
        return self.budget - self.spent

    @property
    def active_ids(self) -> np.ndarray:
        return self.train_ids[self.active].numpy().copy()

    @property
    def removed_ids(self) -> np.ndarray:
        return self.train_ids[~self.active].numpy().copy()

    def extra_repr(self) -> str:
        return (
            f"classes={self.num_classes}, dim={self.weight.shape[0]}, lam={self.lam:g}, sigma={self.sigma:g}, "
            f"epsilon={self.epsilon:g}, delta={self.delta:g}, spent={self.spent:.4g}/{self.budget:.4g}, "
            f"trained={len(self.train_ids)}, removed={int((~self.active).sum())}, retrains={self.retrains}"
        )

    # ------------------------------------------------------------------ forward
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen features, flattened and scaled to unit L2 norm, in float64."""
        with torch.no_grad():
            if self.features is not None:
                x = self.features(x)
        f = x.flatten(1).to(torch.float64)
        return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x) @ self.weight
        if self.num_classes == 2:
            z = torch.cat([torch.zeros_like(z), z], dim=1)
        return z.to(torch.float32)

    # ------------------------------------------------------------------ training
    def _arrays(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self.train_X.numpy()[mask]
        return X, _signed_labels(self.train_y.numpy()[mask], self.num_classes)

    def refit(self) -> None:
        """Train from scratch on the active examples with fresh noise ``b`` (drawn from the seed and
        the retrain count) and reset the residual to the solver's final gradient norm."""
        mask = self.active.numpy()
        X, Y = self._arrays(mask)
        rng = np.random.default_rng(None if self.secure else (self.seed, self.retrains))
        b = self.sigma * rng.standard_normal(self.b.shape)
        W, G = fit_logistic(X, Y, self.lam, b)
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(W))
            self.b.copy_(torch.from_numpy(b))
            self.residual.copy_(torch.from_numpy(np.linalg.norm(G, axis=0)))
            self.precond.copy_(torch.from_numpy(np.linalg.inv(_hessians(X, W, self.lam))))
        self.x_norm = math.sqrt(max(float(np.linalg.eigvalsh(X.T @ X)[-1]), 0.0))

    # ------------------------------------------------------------------ removal
    def _positions(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        ids = _as_id_array(ids)
        if ids.size == 0:
            raise InvalidInputError("remove() got no ids; name at least one training id.")
        uniq, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            raise InvalidInputError(f"ids {uniq[counts > 1][:10].tolist()} appear twice in one request; name each once.")
        train = self.train_ids.numpy()
        order = np.argsort(train)
        where = np.searchsorted(train, ids, sorter=order)
        where = np.minimum(where, len(train) - 1)
        pos = order[where]
        unknown = train[pos] != ids
        if np.any(unknown):
            raise UnknownIdsError(ids[unknown], where="the certified model's training set")
        gone = ~self.active.numpy()[pos]
        if np.any(gone):
            raise AlreadyRemovedError(ids[gone])
        return pos

    def removal_bound(self, ids: Iterable[int] | np.ndarray) -> NewtonStep:
        """The Newton step that would remove ``ids`` and its residual bound, without applying it."""
        pos = self._positions(ids)
        keep = self.active.numpy().copy()
        keep[pos] = False
        if not keep.any():
            raise ForgetAllError(int(self.active.sum()))
        X_rem, Y_rem = self._arrays(keep)
        X_del, Y_del = self._arrays(pos)
        step = newton_removal(
            X_rem, Y_rem, X_del, Y_del, self.weight.detach().numpy(), self.lam,
            x_norm=self.x_norm, precond=self.precond.numpy(),
        )
        if step.iterations >= 20:  # the stored preconditioner has gone stale: rebuild it here
            precond = np.linalg.inv(_hessians(X_rem, self.weight.detach().numpy(), self.lam))
            self.precond.copy_(torch.from_numpy(precond))
            step = newton_removal(
                X_rem, Y_rem, X_del, Y_del, self.weight.detach().numpy(), self.lam, x_norm=self.x_norm, precond=precond
            )
        return step

    def _erase(self, pos: np.ndarray) -> None:
        """Mark rows removed and wipe their stored features and labels: the model keeps only the ids."""
        index = torch.from_numpy(pos)
        self.active[index] = False
        self.train_X[index] = 0.0
        self.train_y[index] = -1

    def remove(self, ids: Iterable[int] | np.ndarray, *, policy: str | None = None) -> Removal:
        """Remove ``ids`` in one Newton step, or retrain / refuse when the budget cannot take it.

        Raises :class:`UnknownIdsError` for ids the model was not trained on, :class:`AlreadyRemovedError`
        for ids removed before and, under policy ``refuse``, :class:`BudgetExhaustedError` (the model is
        then left unchanged).
        """
        policy = self.policy if policy is None else policy
        if policy not in POLICIES:
            raise InvalidInputError(f"policy must be one of {POLICIES}, got {policy!r}.")
        pos = self._positions(ids)
        step = self.removal_bound(ids)
        new_residual = self.residual.numpy() + step.bound
        spent_after = float(np.linalg.norm(new_residual))
        added = spent_after - self.spent
        if spent_after > self.budget:
            if policy == "refuse":
                raise BudgetExhaustedError(self.spent, added, self.budget)
            self._erase(pos)
            self.retrains += 1
            self.refit()
            record = Removal(len(pos), added, True, self.spent, self.budget)
        else:
            with torch.no_grad():
                self.weight.add_(torch.from_numpy(step.update))
                self.residual.copy_(torch.from_numpy(new_residual))
            self._erase(pos)
            record = Removal(len(pos), added, False, self.spent, self.budget)
        self.removals.append(record)
        return record


# ---------------------------------------------------------------------------- training entry point
def _check_number(name: str, value: object, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"{name} must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(f"{name} must be finite, got {value}.")
    if low is not None and not value > low:
        raise InvalidInputError(f"{name} must be > {low:g}, got {value:g}.")
    if high is not None and not value < high:
        raise InvalidInputError(f"{name} must be < {high:g}, got {value:g}.")
    return value


def _embed_all(model: CertifiedLogisticRegression, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
    xt = torch.from_numpy(X)
    return np.concatenate([model.embed(xt[i : i + chunk]).numpy() for i in range(0, len(X), chunk)])


def fit_certified(
    data: Dataset,
    *,
    epsilon: float = 1.0,
    delta: float = 1e-4,
    lam: float = 1e-2,
    sigma: float = 1.0,
    c: float | None = None,
    seed: int = 0,
    secure: bool = False,
    features: nn.Module | None = None,
    policy: str = "retrain",
) -> CertifiedLogisticRegression:
    """Train a :class:`CertifiedLogisticRegression` on ``data`` with loss perturbation ``b.w``.

    ``b ~ N(0, sigma^2 I)`` is drawn from ``seed`` (reproducible; the certificate then holds only
    against whoever does not know the seed) or, with ``secure=True``, from OS entropy (for models that
    are released); ``lam`` is the L2 weight (the objective's
    regulariser is ``lam n / 2 ||w||^2``). ``c`` defaults to the smallest value certifying
    ``delta`` (``sqrt(2 ln(1.5 / delta))``, Theorem 3); a larger ``c`` gives a smaller delta and a
    smaller budget. The removal budget is ``sigma epsilon / c``: more noise buys more removals at
    some accuracy. ``features`` is a frozen extractor applied before the linear model (e.g. an MLP
    trained on public data with its head removed); it is put in eval mode and never updated.
    """
    if not isinstance(data, Dataset):
        raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays.")
    if len(data) < 2 or data.num_classes < 2:
        raise InvalidInputError(f"fit_certified needs at least 2 examples and 2 classes, got {len(data)} and {data.num_classes}.")
    epsilon = _check_number("epsilon", epsilon, low=0.0)
    delta = _check_number("delta", delta, low=0.0, high=1.0)
    lam = _check_number("lam", lam, low=0.0)
    sigma = _check_number("sigma", sigma, low=0.0)
    c_min = c_for_delta(delta)
    if c is None:
        c = c_min
    else:
        c = _check_number("c", c, low=0.0)
        if c < c_min:
            raise InvalidInputError(
                f"c={c:g} certifies only delta={1.5 * math.exp(-c * c / 2):.3g} > delta={delta:g}; "
                f"use c >= {c_min:.4g} or omit c."
            )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be an integer >= 0, got {seed!r}.")
    if policy not in POLICIES:
        raise InvalidInputError(f"policy must be one of {POLICIES}, got {policy!r}.")
    if features is not None:
        if not isinstance(features, nn.Module):
            raise InvalidInputError(f"features must be a torch.nn.Module (a frozen extractor) or None, got {type(features).__name__}.")
        features.eval()
        for p in features.parameters():
            p.requires_grad_(False)
    data = data.sorted_by_id()  # training is a function of the id set, not of row order
    probe = CertifiedLogisticRegression(
        dim=1, num_classes=data.num_classes, train_ids=np.zeros(0), train_X=np.zeros((0, 1)), train_y=np.zeros(0),
        lam=lam, sigma=sigma, c=c, epsilon=epsilon, delta=delta, seed=int(seed), policy=policy, features=features,
    )
    try:
        X = _embed_all(probe, data.X)
    except Exception as exc:  # noqa: BLE001 - any shape mismatch of the extractor is reported the same way
        raise InvalidInputError(f"the features extractor cannot take inputs of shape {data.input_shape}: {exc}") from exc
    model = CertifiedLogisticRegression(
        dim=X.shape[1], num_classes=data.num_classes, train_ids=data.ids, train_X=X, train_y=data.y,
        lam=lam, sigma=sigma, c=c, epsilon=epsilon, delta=delta, seed=int(seed), policy=policy, features=features,
    )
    model.secure = bool(secure)
    model.refit()
    return model.eval()
