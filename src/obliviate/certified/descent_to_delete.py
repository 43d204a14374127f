"""Descent-to-Delete: perturbed projected gradient descent with (epsilon, delta) unlearning.

Neel, Roth and Sharifi-Malvajerdi, "Descent-to-Delete: Gradient-Based Methods for Machine
Unlearning", ALT 2021 (PMLR 132; arXiv:2007.02923), Section 3, the perturbed gradient descent
algorithm for m-strongly convex, M-smooth, L-Lipschitz losses on a convex set Theta of diameter D
(its unlearning theorem, Theorem 3.1 in the arXiv version as we read it, with Algorithms 1 and 2):

* training ``A``: projected GD from a point of Theta with step ``eta = 2 / (m + M)`` for
  ``T_0 = T + log(D m n / (2 L)) / log(1 / gamma)`` iterations, ``gamma = (M - m) / (M + m)``;
  publish ``theta' + N(0, sigma^2 I)`` and keep the un-noised ``theta'`` as secret state;
* each update (a deletion or an addition): ``T`` projected GD steps from the last un-noised
  ``theta'`` on the updated data, then publish with fresh noise of the same ``sigma``;
* ``sigma = 4 sqrt(2) L gamma^T / (m n (1 - gamma^T) (sqrt(log(1/delta) + epsilon) - sqrt(log(1/delta))))``.

The constant: the un-noised iterate stays within ``2 L gamma^T / (m n (1 - gamma^T))`` of the
minimiser on the current data (GD contracts by gamma per step; one update moves the minimiser by at
most ``2 L / (m n)``), the paper takes the distance to a from-scratch run as
``Delta = 8 L gamma^T / (m n (1 - gamma^T))`` and applies the Gaussian mechanism in the form
``sigma = Delta / (sqrt(2) (sqrt(log(1/delta) + epsilon) - sqrt(log(1/delta))))``; that is the formula
above, and the same constants as the authors' experiment code (``set_Delta`` / ``set_sigma`` /
``set_start_grad_iter``). The guarantee is the paper's: each published model is (epsilon, delta)-
indistinguishable from the published output of ``A`` retrained on the current data, for update
sequences chosen without looking at the published models (non-adaptive), while the un-noised state
stays secret (:meth:`DescentToDeleteLogistic.strip_secret` gives a copy safe to release).

Choices the paper leaves open, made here:

* ``n`` in sigma is the size of the updated data, the same sigma the reference (algorithm A
  retrained on that data) publishes with, so both Gaussians have equal variance; sigma grows as
  ``1 / n`` as deletions shrink the data. After additions the radius is smaller, so the update first
  contracts its error by the extra factor ``n_before / n_after`` (``log(n_after / n_before) / log(1/gamma)``
  more steps).
* A request of ``k`` simultaneous updates runs ``T_k = T + log(gamma^T + k (1 - gamma^T)) / log(1/gamma)``
  steps (``T_1 = T``): the minimiser moves by at most ``k 2 L / (m n)`` (triangle inequality over the
  k single changes), and ``T_k`` keeps the paper's steady-state bound, so sigma is unchanged. This
  extends the paper's one-update-at-a-time proof; it is ours, not the paper's.

The model: multinomial (softmax) L2-regularised logistic regression on the fixed feature map
``phi(x) = [x / max(|x|, c), 1]`` (``c = clip_norm``; ``None`` normalises every row to unit norm), so
``|phi| <= sqrt(2)``. Per-example loss ``CE(W phi, y) + (lam / 2) |W|_F^2`` over ``W`` in
``R^{K x (d+1)}``. Constants (:func:`logistic_constants`): ``m = lam``; ``M = lam + |phi|^2 / 2 = lam + 1``
(the softmax Hessian ``diag(p) - p p^T`` is at most 1/2 in spectral norm, Boehning 1992);
Theta is the Frobenius ball of radius ``R = sqrt(2 log K / lam)``, which holds the minimiser for
any data (``(lam/2)|W*|^2 <= F(W*) <= F(0) = log K``), so projecting never moves it; on Theta the
gradient norm is at most ``L = |p - e_y| |phi| + lam R <= 2 + lam R``; ``D = 2 R``.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset, _as_id_array
from obliviate.errors import (
    ForgetAllError,
    InvalidInputError,
    UnknownIdsError,
    UnsupportedModelError,
)
from obliviate.training.loop import seeded_generator
from obliviate.unlearning.base import Guarantee, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = [
    "LossConstants",
    "logistic_constants",
    "d2d_sigma",
    "d2d_epsilon",
    "iterations_for_sigma",
    "initial_iterations",
    "batch_iterations",
    "DescentToDeleteLogistic",
    "train_descent_to_delete",
    "descent_to_delete_update",
    "DescentToDelete",
]

_SUPPORTED = ("DescentToDeleteLogistic (build it with obliviate.certified.descent_to_delete.train_descent_to_delete)",)


# --------------------------------------------------------------------------- the bounds
@dataclass(frozen=True)
class LossConstants:
    """Strong convexity ``m``, smoothness ``M``, Lipschitz ``L`` on Theta, and Theta's radius."""

    m: float
    M: float
    L: float
    radius: float

    def __post_init__(self) -> None:
        if not (0 < self.m <= self.M) or not self.L > 0 or not self.radius > 0:
            raise InvalidInputError(
                f"loss constants need 0 < m <= M, L > 0 and radius > 0; got m={self.m}, M={self.M}, "
                f"L={self.L}, radius={self.radius}."
            )

    @property
    def gamma(self) -> float:
        """The contraction factor of one GD step with step 2/(m+M): (M - m)/(M + m)."""
        return (self.M - self.m) / (self.M + self.m)

    @property
    def step(self) -> float:
        return 2.0 / (self.m + self.M)

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius


def logistic_constants(lam: float, num_classes: int) -> LossConstants:
    """Constants of the softmax logistic loss with ``(lam/2)|W|^2`` on features of norm <= sqrt(2)."""
    if not (isinstance(lam, int | float) and math.isfinite(lam) and lam > 0):
        raise InvalidInputError(f"lam (the L2 strength, which is the strong convexity m) must be > 0, got {lam!r}.")
    if int(num_classes) < 2:
        raise InvalidInputError(f"num_classes must be >= 2, got {num_classes}.")
    radius = math.sqrt(2.0 * math.log(int(num_classes)) / lam)
    feature_sq = 2.0  # |[x/|x|, 1]|^2
    return LossConstants(m=lam, M=lam + feature_sq / 2.0, L=math.sqrt(2.0) * math.sqrt(feature_sq) + lam * radius, radius=radius)


def _check_privacy(epsilon: float, delta: float) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not math.isfinite(epsilon) or epsilon <= 0:
        raise InvalidInputError(f"epsilon must be a finite number > 0, got {epsilon!r}.")
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0.0 < delta < 1.0:
        raise InvalidInputError(f"delta must be in (0, 1), got {delta!r}; a common choice is below 1/n.")


def _check_counts(iterations: int, n: int) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer) or iterations < 1:
        raise InvalidInputError(f"iterations (T) must be an integer >= 1, got {iterations!r}.")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidInputError(f"n (the dataset size) must be an integer >= 1, got {n!r}.")


def _gap(epsilon: float, delta: float) -> float:
    a = math.log(1.0 / delta)
    return math.sqrt(a + epsilon) - math.sqrt(a)


def _ratio(iterations: int, gamma: float) -> float:
    """gamma^T / (1 - gamma^T), computed in log space."""
    if gamma == 0.0:
        return 0.0
    log_g = iterations * math.log(gamma)
    return math.exp(log_g) / -math.expm1(log_g)


def _sensitivity(iterations: int, n: int, c: LossConstants) -> float:
    """The paper's Delta = 8 L gamma^T / (m n (1 - gamma^T))."""
    return 8.0 * c.L * _ratio(iterations, c.gamma) / (c.m * n)


def d2d_sigma(iterations: int, n: int, epsilon: float, delta: float, constants: LossConstants) -> float:
    """sigma(T, n, epsilon, delta) = 4 sqrt(2) L gamma^T / (m n (1 - gamma^T) (sqrt(log 1/delta + eps) - sqrt(log 1/delta)))."""
    _check_privacy(epsilon, delta)
    _check_counts(iterations, n)
    return _sensitivity(int(iterations), int(n), constants) / (math.sqrt(2.0) * _gap(epsilon, delta))


def d2d_epsilon(sigma: float, iterations: int, n: int, delta: float, constants: LossConstants) -> float:
    """The epsilon that noise ``sigma`` certifies at (T, n, delta): the inverse of :func:`d2d_sigma`."""
    _check_privacy(1.0, delta)
    _check_counts(iterations, n)
    if not sigma > 0:
        raise InvalidInputError(f"sigma must be > 0, got {sigma!r}.")
    a = math.log(1.0 / delta)
    shift = _sensitivity(int(iterations), int(n), constants) / (math.sqrt(2.0) * sigma)
    return (math.sqrt(a) + shift) ** 2 - a


def iterations_for_sigma(target_sigma: float, n: int, epsilon: float, delta: float, constants: LossConstants) -> int:
    """The smallest T with ``d2d_sigma(T, n, epsilon, delta) <= target_sigma``.

    ``gamma^T / (1 - gamma^T) <= q`` with ``q = target m n gap / (4 sqrt 2 L)`` iff
    ``T >= log((1 + q) / q) / log(1 / gamma)``.
    """
    _check_privacy(epsilon, delta)
    _check_counts(1, n)
    if not (isinstance(target_sigma, int | float) and target_sigma > 0 and math.isfinite(target_sigma)):
        raise InvalidInputError(f"target sigma must be a finite number > 0, got {target_sigma!r}.")
    c = constants
    if c.gamma == 0.0:
        return 1
    q = target_sigma * c.m * n * _gap(epsilon, delta) / (4.0 * math.sqrt(2.0) * c.L)
    t = max(1, math.ceil(math.log1p(1.0 / q) / -math.log(c.gamma) - 1e-9))
    while d2d_sigma(t, n, epsilon, delta, c) > target_sigma:  # guard the rounding
        t += 1
    return t


def initial_iterations(iterations: int, n: int, constants: LossConstants) -> int:
    """The training run's T_0 = T + log(D m n / (2 L)) / log(1 / gamma) (at least T)."""
    _check_counts(iterations, n)
    c = constants
    extra = math.log(c.diameter * c.m * n / (2.0 * c.L))
    if extra <= 0 or c.gamma == 0.0:
        return int(iterations)
    return int(iterations) + math.ceil(extra / -math.log(c.gamma))


def batch_iterations(iterations: int, k: int, constants: LossConstants) -> int:
    """Steps for ``k`` simultaneous updates keeping the T-step steady state: T + log(g^T + k (1 - g^T)) / log(1/g)."""
    _check_counts(iterations, 1)
    if int(k) < 1:
        raise InvalidInputError(f"an update changes at least one example, got k={k}.")
    g = constants.gamma
    if int(k) == 1 or g == 0.0:
        return int(iterations)
    gt = g ** int(iterations)
    return int(iterations) + math.ceil(math.log(gt + k * (1.0 - gt)) / -math.log(g) - 1e-9)


# --------------------------------------------------------------------------- the model
class DescentToDeleteLogistic(nn.Module):
    """Softmax logistic regression that publishes ``W' + N(0, sigma^2 I)`` and keeps ``W'``.

    ``weight`` (K x (d+1), last column the bias) is the published, noised model the forward pass
    uses; the buffer ``secret`` is the un-noised state the next update starts from; ``held_ids`` and
    ``deleted_ids`` record which examples it was trained on and which it has unlearned.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        lam: float,
        iterations: int,
        epsilon: float,
        delta: float,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__()
        _check_privacy(epsilon, delta)
        _check_counts(iterations, 1)
        if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
            raise InvalidInputError(f"clip_norm must be > 0 (or None for unit-norm rows), got {clip_norm!r}.")
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        self.constants = logistic_constants(lam, num_classes)
        self.lam, self.iterations = float(lam), int(iterations)
        self.epsilon, self.delta, self.clip_norm = float(epsilon), float(delta), clip_norm
        self.sigma = float("nan")
        self.requests = 0
        self.secure = False  # True: published noise from OS entropy, not from the seed
        self.weight = nn.Parameter(torch.zeros(self.num_classes, self.in_features + 1))
        self.register_buffer("secret", torch.zeros(self.num_classes, self.in_features + 1, dtype=torch.float64))
        self.register_buffer("held_ids", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("deleted_ids", torch.zeros(0, dtype=torch.int64))
        self.n_min = 0
        self.training_steps = 0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) = [x / max(|x|, clip_norm), 1] (``clip_norm=None``: x / |x|), so |phi| <= sqrt(2)."""
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.in_features:
            raise InvalidInputError(f"this model takes {self.in_features} features per example, got {x.shape[1]}.")
        norm = x.norm(dim=1, keepdim=True)
        floor = 1e-12 if self.clip_norm is None else float(self.clip_norm)
        return torch.cat([x / norm.clamp_min(floor), torch.ones(len(x), 1, dtype=x.dtype)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = self.features(x.to(self.weight.dtype))
        return phi @ self.weight.T

    @property
    def certified(self) -> Guarantee:
        """What the published weights certify: (epsilon, delta) of the last publication."""
        return Guarantee("certified", self.epsilon, self.delta)

    def secret_model(self) -> DescentToDeleteLogistic:
        """A copy whose published weights are the un-noised state (for analysis, never for release)."""
        import copy

        out = copy.deepcopy(self)
        with torch.no_grad():
            out.weight.copy_(self.secret.to(out.weight.dtype))
        return out

    def strip_secret(self) -> DescentToDeleteLogistic:
        """A copy safe to release: the un-noised state is removed (it can no longer be updated)."""
        import copy

        out = copy.deepcopy(self)
        out.secret = torch.zeros(0, dtype=torch.float64)
        return out

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, lam={self.lam:g}, T={self.iterations}, "
            f"epsilon={self.epsilon:g}, delta={self.delta:g}, sigma={self.sigma:.3g}, held={len(self.held_ids)}"
        )


def _design(model: DescentToDeleteLogistic, X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    phi = model.features(torch.as_tensor(np.asarray(X), dtype=torch.float64))
    onehot = F.one_hot(torch.as_tensor(np.asarray(y), dtype=torch.int64), model.num_classes).to(torch.float64)
    return phi, onehot


def projected_gd(
    W: torch.Tensor, phi: torch.Tensor, onehot: torch.Tensor, lam: float, constants: LossConstants, steps: int
) -> torch.Tensor:
    """``steps`` of ``W <- Proj_R(W - eta grad F(W))``, F the mean softmax CE plus (lam/2)|W|^2."""
    W = W.clone()
    n, eta, radius = len(phi), constants.step, constants.radius
    scale = eta / n
    for _ in range(int(steps)):
        grad = torch.softmax(phi @ W.T, dim=1).sub_(onehot).T @ phi
        W.mul_(1.0 - eta * lam).sub_(grad, alpha=scale)
        norm = float(torch.linalg.vector_norm(W))
        if norm > radius:
            W.mul_(radius / norm)
    return W


def _publish(model: DescentToDeleteLogistic, n: int, epsilon: float, delta: float, generator: torch.Generator) -> None:
    if model.secure:  # the noise must not be reproducible from anything the model or its recipe records
        generator = torch.Generator().manual_seed(secrets.randbits(62))
    sigma = d2d_sigma(model.iterations, n, epsilon, delta, model.constants)
    noise = torch.randn(model.secret.shape, generator=generator, dtype=torch.float64) * sigma
    with torch.no_grad():
        model.weight.copy_((model.secret + noise).to(model.weight.dtype))
    model.sigma, model.epsilon, model.delta = sigma, float(epsilon), float(delta)


def train_descent_to_delete(
    data: Dataset,
    *,
    lam: float = 3e-3,
    iterations: int = 1200,
    epsilon: float = 1.0,
    delta: float = 1e-5,
    clip_norm: float | None = None,
    seed: int = 0,
    secure: bool = False,
) -> DescentToDeleteLogistic:
    """Algorithm A: projected GD from 0 for T_0 steps on ``data``, publish with noise sigma(T, n).

    The noise comes from ``seed`` (reproducible; certified only against whoever does not know it) or,
    with ``secure=True``, from OS entropy for this and every later publication (for released models).
    """
    if not isinstance(data, Dataset):
        raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}.")
    if len(data) < 1:
        raise InvalidInputError("cannot train on an empty dataset.")
    model = DescentToDeleteLogistic(
        int(np.prod(data.input_shape)), data.num_classes, lam=lam, iterations=iterations,
        epsilon=epsilon, delta=delta, clip_norm=clip_norm,
    )
    phi, onehot = _design(model, data.X, data.y)
    steps = initial_iterations(model.iterations, len(data), model.constants)
    model.secret = projected_gd(model.secret, phi, onehot, model.lam, model.constants, steps)
    model.held_ids = torch.as_tensor(np.sort(data.ids), dtype=torch.int64)
    model.n_min = len(data)
    model.secure = bool(secure)
    _publish(model, len(data), epsilon, delta, torch.Generator().manual_seed(int(seed)))
    model.training_steps = steps
    return model.eval()


def descent_to_delete_update(
    model: DescentToDeleteLogistic,
    data: Dataset,
    *,
    delete: Iterable[int] | np.ndarray = (),
    add: Dataset | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> tuple[DescentToDeleteLogistic, int, int]:
    """Algorithm R_A in place: drop ``delete`` (and add ``add``), run T_k GD steps from the secret state
    on the updated data, publish with fresh noise. ``data`` must hold every example the model keeps.

    Returns ``(model, steps, n)``: the GD steps run and the size of the updated data.
    """
    if not isinstance(model, DescentToDeleteLogistic):
        raise UnsupportedModelError("descent_to_delete", type(model).__name__, _SUPPORTED)
    if model.secret.numel() == 0:
        raise InvalidInputError("this copy had its un-noised state stripped (strip_secret); update the original model.")
    epsilon = model.epsilon if epsilon is None else epsilon
    delta = model.delta if delta is None else delta
    _check_privacy(epsilon, delta)
    delete_ids = _as_id_array(delete)
    uniq, counts = np.unique(delete_ids, return_counts=True)
    if np.any(counts > 1):
        raise InvalidInputError(f"the request names id(s) {uniq[counts > 1].tolist()[:10]} more than once; name each once.")
    held = model.held_ids.numpy()
    gone = delete_ids[np.isin(delete_ids, model.deleted_ids.numpy())]
    if gone.size:
        raise InvalidInputError(
            f"{gone.size} id(s) were already deleted from this model: {gone[:10].tolist()}. "
            "Each example can be deleted once; drop them from the request (model.deleted_ids lists them)."
        )
    unknown = delete_ids[~np.isin(delete_ids, held)]
    if unknown.size:
        raise UnknownIdsError(unknown, where="the training set of this Descent-to-Delete model")
    keep = held[~np.isin(held, delete_ids)]
    missing = keep[~data.contains(keep)]
    if missing.size:
        raise InvalidInputError(
            f"data lacks {missing.size} example(s) the model still holds (e.g. ids {missing[:5].tolist()}); "
            "pass the dataset the model was trained on."
        )
    current = data.subset(keep)
    X, y, ids = current.X, current.y, current.ids
    k = int(delete_ids.size)
    if add is not None:
        if not isinstance(add, Dataset):
            raise InvalidInputError(f"add must be an obliviate Dataset, got {type(add).__name__}.")
        if int(np.prod(add.input_shape)) != model.in_features:
            raise InvalidInputError(f"added examples have {int(np.prod(add.input_shape))} features, the model {model.in_features}.")
        clash = add.ids[np.isin(add.ids, np.concatenate([keep, model.deleted_ids.numpy()]))]
        if clash.size:
            raise InvalidInputError(f"added ids {clash[:10].tolist()} are already used by this model's data; give new ids.")
        X = np.concatenate([X, add.X.reshape(len(add), *current.input_shape)])
        y, ids = np.concatenate([y, add.y]), np.concatenate([ids, add.ids])
        k += len(add)
    if k == 0:
        raise InvalidInputError("the update deletes and adds nothing; name ids to delete or examples to add.")
    if len(ids) == 0:
        raise ForgetAllError(len(held))
    steps = batch_iterations(model.iterations, k, model.constants)
    n_new = len(ids)
    if n_new > model.n_min and model.constants.gamma > 0:
        # The reference, algorithm A on the updated data, publishes with sigma(T, n_new), smaller than
        # sigma(T, n_min); its sensitivity radius shrinks as 1/n. Contract the error by n_min / n_new more,
        # so the update's distance to the reference fits that radius and both publish with equal variance.
        steps += math.ceil(math.log(n_new / model.n_min) / -math.log(model.constants.gamma) - 1e-9)
    phi, onehot = _design(model, X, y)
    model.secret = projected_gd(model.secret, phi, onehot, model.lam, model.constants, steps)
    model.held_ids = torch.as_tensor(np.sort(ids), dtype=torch.int64)
    model.deleted_ids = torch.as_tensor(np.sort(np.concatenate([model.deleted_ids.numpy(), delete_ids])), dtype=torch.int64)
    model.n_min = n_new  # the size whose error radius the un-noised state now meets
    model.requests += 1
    if generator is None:  # a fresh draw per publication: reusing one would let the noise cancel between them
        generator = seeded_generator(int(seed), 1000 + model.requests)
    _publish(model, n_new, epsilon, delta, generator)  # the reference's sigma: equal variances
    return model, steps, len(ids)


@register
class DescentToDelete(Unlearner):
    """Descent-to-Delete (Neel et al. ALT 2021): T projected GD steps from the un-noised state on the
    remaining data, then Gaussian noise with sigma(T, n, epsilon, delta); needs a
    :class:`DescentToDeleteLogistic` (see :func:`train_descent_to_delete`). The returned model keeps its
    un-noised state, so successive requests chain. ``epsilon`` and ``delta`` default to 0, meaning
    the values the model was trained for; set them to republish at another privacy level.
    """

    name = "descent_to_delete"
    summary = "perturbed projected GD from the un-noised state (certified, strongly convex models)"

    @dataclass(frozen=True)
    class Config:
        epsilon: float = 0.0  # 0: the model's own
        delta: float = 0.0  # 0: the model's own

    def __init__(self, config: Config | None = None, **settings: object) -> None:
        super().__init__(config, **settings)
        c = self.config
        self.guarantee = Guarantee("certified", c.epsilon, c.delta) if c.epsilon and c.delta else Guarantee("certified")

    def validate_config(self) -> None:
        c = self.config
        if c.epsilon < 0 or not np.isfinite(c.epsilon):
            raise InvalidInputError(f"descent_to_delete.epsilon must be > 0 (or 0 for the model's own), got {c.epsilon}.")
        if c.delta and not 0.0 < c.delta < 1.0:
            raise InvalidInputError(f"descent_to_delete.delta must be in (0, 1) (or 0 for the model's own), got {c.delta}.")

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        if not isinstance(model, DescentToDeleteLogistic):
            raise UnsupportedModelError(self.name, type(model).__name__, _SUPPORTED)
        forget = task.forget.ids
        held = model.held_ids.numpy()
        data = task.retain.subset(task.retain.ids[np.isin(task.retain.ids, held)])
        out, steps, n = descent_to_delete_update(
            model, data, delete=forget, epsilon=self.config.epsilon or model.epsilon,
            delta=self.config.delta or model.delta,
            generator=task.generator(1000 + model.requests),
        )
        task.record_read(data)
        task.gradient_steps += steps
        task.examples_seen += steps * n
        return out
