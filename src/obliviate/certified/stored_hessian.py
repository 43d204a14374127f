"""Certified removal from a stored, downdated Hessian (Sekhari et al. 2021 inside Guo et al.'s certificate).

Sekhari, Acharya, Kamath, Suresh, "Remember What You Want to Forget: Algorithms for Machine
Unlearning", NeurIPS 2021, Algorithm 2 (unlearning): keep the Hessian of the training loss at the
trained weights ``w^`` and, to delete a set ``U``, take one Newton step **from ``w^``**::

    w_U = w^ + H_U^{-1} Delta_U,
    H_U = sum_{i not in U} l''(w^.x_i) x_i x_i^T + lambda n_U I          (the Hessian of L(.; D \\ U) at w^)
    Delta_U = |U| lambda w^ + sum_{j in U} grad l(w^.x_j, y_j)          (Guo et al. eq. (2) for the batch U)

``H_U`` is the training Hessian minus the removed points' terms, kept up to date by rank-one
downdates (``M -= l''(w^.x_j) x_j x_j^T``, O(K d^2) per point for K one-vs-rest columns), and
``Delta_U`` is a running sum, so a request costs O(k K d^2) for its k points plus one Cholesky
factorisation per column (O(K d^3)), whatever n is. Nothing is stale: the Hessian is the exact
Hessian at ``w^`` of the remaining data, and the step is always taken from ``w^`` with the whole
removed set, so this is Guo et al.'s batched removal (Sec. 3.3) of ``U`` from the trained model.

The certificate is Guo et al.'s (ICML 2020), with the loss perturbation ``b`` of training. The
gradient residual of ``w_U`` on the remaining data is ``r_0 + (H_avg - H_U) u`` with ``r_0`` the
solver's final gradient at ``w^`` (carried as ``residual`` at training) and ``H_avg`` the Hessian
averaged along the step, so (Corollary 1, per column)::

    ||grad L_b(w_U; D \\ U)|| <= ||r_0|| + gamma max_i||x_i|| ||X_U||_2 ||u|| ||X_U u|| + ||H_U u - Delta_U||

with ``gamma = 1/4``, ``||X_U||_2 = sqrt(lambda_max(G_U))`` and ``||X_U u|| = sqrt(u^T G_U u)`` read from
the Gram matrix ``G_U = X_U^T X_U``, downdated like ``M`` (so the bound is O(d^2) given ``u``). The
model's residual is this bound for the *current* ``U``: it is not a sum over requests. Removing
more points makes ``u`` longer and the bound larger (about linearly for random points; Guo et al.'s
table shows the batch bound of 100 points near 100 single-point bounds), and once it would exceed the
budget ``sigma epsilon / c`` (Theorem 3) the model retrains on the remaining data with fresh noise
(policy ``retrain``; ``w^``, ``M``, ``G`` are rebuilt and ``U`` emptied) or refuses
(policy ``refuse``, :class:`~obliviate.errors.BudgetExhaustedError`, model unchanged).

Qiao et al. (ICLR 2025, "Hessian-free online certified unlearning") go further, precomputing a
vector per training point so that a removal is a vector addition; their certificate is output
perturbation with a data-independent bound, not Guo et al.'s loss perturbation, so it is not this
model's accounting and is not implemented here.

Use :func:`fit_stored_hessian` (``fit_certified``'s options) or :func:`with_stored_hessian` on a
model from :func:`~obliviate.certified.logistic.fit_certified`; ``certified_newton`` removes from
either, taking this path for this class.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit

from obliviate.certified.logistic import (
    GAMMA,
    POLICIES,
    CertifiedLogisticRegression,
    NewtonStep,
    Removal,
    _curvature,
    _margins,
    fit_certified,
)
from obliviate.data.dataset import Dataset
from obliviate.errors import BudgetExhaustedError, ForgetAllError, InvalidInputError

__all__ = ["StoredHessianLogisticRegression", "fit_stored_hessian", "with_stored_hessian"]


@dataclass(frozen=True)
class _Plan:
    """The state a removal would leave: weights, residual per column and the downdated statistics."""

    weight: np.ndarray
    residual: np.ndarray
    M: np.ndarray
    G: np.ndarray
    delta: np.ndarray
    count: int
    bound: np.ndarray
    solve_residual: np.ndarray


class StoredHessianLogisticRegression(CertifiedLogisticRegression):
    """A :class:`CertifiedLogisticRegression` whose removals use the stored, downdated Hessian at ``w^``.

    Extra state (float64 buffers, saved with the model): ``anchor`` (``w^``, d x K), ``anchor_residual``
    (``||r_0||`` per column), ``hess_data`` (``M``, K x d x d, the data part of the Hessian of the
    remaining data at ``w^``), ``gram`` (``G``, d x d), ``delta_sum`` (``Delta_U``, d x K) and
    ``removed_since`` (``|U|``, points removed since ``w^`` was trained).
    """

    def _anchor(self) -> None:
        mask = self.active.numpy()
        X, _ = self._arrays(mask)
        W = self.weight.detach().numpy().copy()
        s = _curvature(X, W)
        M = np.stack([(X * s[:, k : k + 1]).T @ X for k in range(s.shape[1])])
        state = {
            "anchor": W,
            "anchor_residual": self.residual.numpy().copy(),
            "hess_data": M,
            "gram": X.T @ X,
            "delta_sum": np.zeros_like(W),
        }
        for name, value in state.items():
            if name in self._buffers:
                self._buffers[name] = torch.from_numpy(value)
            else:  # not in state_dict: delta_sum holds the removed rows' gradients (the deleted x up to a scale),
                # hess_data and gram their outer products; only the weights are covered by the certificate
                self.register_buffer(name, torch.from_numpy(value), persistent=False)
        self.removed_since = 0
        self.row_max = float(np.sqrt((X * X).sum(1).max()))

    def refit(self) -> None:
        super().refit()
        self._anchor()

    def _plan(self, pos: np.ndarray) -> _Plan:
        """The removal of rows ``pos`` from ``w^`` together with every point removed since it, not applied."""
        n_left = int(self.active.sum()) - len(pos)
        if n_left <= 0:
            raise ForgetAllError(int(self.active.sum()))
        X_del, Y_del = self._arrays(pos)
        W0 = self.anchor.numpy()
        s_del = _curvature(X_del, W0)
        M = self.hess_data.numpy() - np.einsum("ik,id,ie->kde", s_del, X_del, X_del, optimize=True)
        G = self.gram.numpy() - X_del.T @ X_del
        delta = (
            self.delta_sum.numpy() + len(pos) * self.lam * W0 + X_del.T @ (-Y_del * expit(-_margins(X_del, Y_del, W0)))
        )
        d = M.shape[1]
        H = M + self.lam * n_left * np.eye(d)[None]
        L = np.linalg.cholesky(H)
        # H u = delta per column k: two triangular solves against the Cholesky factor
        z = np.linalg.solve(L, delta.T[..., None])
        u = np.linalg.solve(np.swapaxes(L, 1, 2), z)[..., 0].T
        solve_res = np.linalg.norm(np.einsum("kij,jk->ik", H, u) - delta, axis=0)
        x_norm = float(np.sqrt(max(np.linalg.eigvalsh(G)[-1], 0.0)))
        xu = np.sqrt(np.maximum(np.einsum("ik,ij,jk->k", u, G, u), 0.0))
        bound = GAMMA * self.row_max * x_norm * np.linalg.norm(u, axis=0) * xu + solve_res
        return _Plan(
            weight=W0 + u,
            residual=self.anchor_residual.numpy() + bound,
            M=M,
            G=G,
            delta=delta,
            count=self.removed_since + len(pos),
            bound=bound,
            solve_residual=solve_res,
        )

    def removal_bound(self, ids: Iterable[int] | np.ndarray) -> NewtonStep:
        """The step removing ``ids`` (with everything removed since ``w^``), without applying it.

        ``update`` is the change to the current weights and ``bound`` the change to the residual
        bound per column (the new model's residual is ``residual + bound``).
        """
        plan = self._plan(self._positions(ids))
        return NewtonStep(
            update=plan.weight - self.weight.detach().numpy(),
            bound=plan.residual - self.residual.numpy(),
            solve_residual=plan.solve_residual,
            iterations=0,
        )

    def remove(self, ids: Iterable[int] | np.ndarray, *, policy: str | None = None) -> Removal:
        """Remove ``ids``: one Newton step from ``w^`` for all points removed since, or retrain / refuse.

        Errors as :meth:`CertifiedLogisticRegression.remove`; the model is unchanged when one is raised.
        """
        policy = self.policy if policy is None else policy
        if policy not in POLICIES:
            raise InvalidInputError(f"policy must be one of {POLICIES}, got {policy!r}.")
        pos = self._positions(ids)
        plan = self._plan(pos)
        spent_after = float(np.linalg.norm(plan.residual))
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
                self.weight.copy_(torch.from_numpy(plan.weight))
                self.residual.copy_(torch.from_numpy(plan.residual))
            self.hess_data.copy_(torch.from_numpy(plan.M))
            self.gram.copy_(torch.from_numpy(plan.G))
            self.delta_sum.copy_(torch.from_numpy(plan.delta))
            self.removed_since = plan.count
            self._erase(pos)
            record = Removal(len(pos), added, False, self.spent, self.budget)
        self.removals.append(record)
        return record


def with_stored_hessian(model: CertifiedLogisticRegression) -> StoredHessianLogisticRegression:
    """Turn a freshly trained :class:`CertifiedLogisticRegression` into the stored-Hessian kind, in place.

    Builds ``M`` and ``G`` from the model's training features at its weights (one pass, O(n K d^2)).
    The model must not have removed points yet (its Newton steps would have left ``w^``).
    """
    if not isinstance(model, CertifiedLogisticRegression):
        raise InvalidInputError(
            f"with_stored_hessian takes a CertifiedLogisticRegression (from fit_certified), got {type(model).__name__}."
        )
    if isinstance(model, StoredHessianLogisticRegression):
        return model
    if (~model.active).any():
        raise InvalidInputError(
            "with_stored_hessian needs a model with no removals yet: the stored Hessian is taken at the trained "
            "weights. Call model.refit() first (it retrains on the remaining data), or convert before removing."
        )
    model.__class__ = StoredHessianLogisticRegression
    model._anchor()
    return model


def fit_stored_hessian(data: Dataset, **options) -> StoredHessianLogisticRegression:
    """:func:`~obliviate.certified.logistic.fit_certified` (same options), keeping the Hessian for fast removal."""
    return with_stored_hessian(fit_certified(data, **options))
