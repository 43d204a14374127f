"""Summation-form learners with exact deletion (Cao & Yang, S&P 2015; Ginart et al., NeurIPS 2019).

Cao & Yang, "Towards Making Systems Forget with Machine Unlearning", IEEE S&P 2015, Sec. 4: a
learner in *summation form* computes its model from a few sums over the training set,
``G_k = sum_i g_k(x_i, y_i)``, then ``model = F(G_1, ..., G_m)``. Deleting example ``p`` is
``G_k <- G_k - g_k(x_p, y_p)`` followed by ``F``: the result is the model trained without ``p``
(up to floating-point summation order), at a cost that does not depend on ``n``.

Learners here, each keeping its sums in float64:

* :class:`GaussianNaiveBayes`: per class ``n_c``, ``sum x`` and ``sum x^2`` (features shifted by a
  fixed centre chosen at fit time, so ``E[x^2] - E[x]^2`` does not cancel catastrophically), plus
  the same three sums over all rows for scikit-learn's variance smoothing
  ``epsilon = var_smoothing * max_j Var(x_j)``. Delete: O(d) per example.
* :class:`MultinomialNaiveBayes`: per class ``n_c`` and the feature counts ``N_cj = sum x_ij``;
  ``theta_cj = (N_cj + alpha) / (N_c + alpha d)`` (Lidstone smoothing, scikit-learn's formula).
  Delete: O(d) per example.
* :class:`RidgeRegression`: the sufficient statistics ``A = X~^T X~`` and ``b = X~^T y`` of the
  features with an appended constant column (unpenalised intercept), ``X~`` shifted by a fixed
  centre. Delete: ``A -= x~ x~^T``, ``b -= x~ y`` (O(k d^2) for k examples), then a **re-solve from
  the updated statistics** by Cholesky (O(d^3) once per request). Not a Sherman-Morrison update of
  an inverse: that drifts with every update, a re-solve of the exact statistics does not.
* :class:`QKMeans`: Ginart et al.'s quantised Lloyd iterations (Algorithm 2 and the deletion
  Algorithm 3 of "Making AI Forget You: Data Deletion in Machine Learning"; reference code
  tginart/deletion-efficient-kmeans). Deletion is O(T k d) when the quantised centroids do not
  move and a full re-run otherwise.
* :class:`DCKMeans`: Ginart et al.'s divide-and-conquer k-means (a tree of height 1): a deletion
  reruns k-means on the deleted rows' leaves and on the root only.

Logistic regression has no exact summation form: its minimiser solves ``sum_i x_i (sigma(w.x_i) -
y_i) + lambda w = 0``, whose terms depend on ``w`` itself, so no fixed set of sums determines the
solution; removing a point moves ``w`` and changes every other term. Cao & Yang's remedy (and
:mod:`obliviate.certified.newton`'s) is approximate: a Newton step from sums evaluated at the old
``w``, which is why logistic removal here is *certified* (Guo et al. 2020), not exact.

Every ``delete(ids)`` validates the whole request first: an id never trained on is
:class:`~obliviate.errors.UnknownIdsError`, an id already deleted :class:`AlreadyDeletedError`,
a request emptying the model :class:`~obliviate.errors.ForgetAllError`; the model is then unchanged.
The learners keep the training rows they need to subtract (Cao & Yang assume the deleted example is
available at deletion time) and wipe a row when it is deleted.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from obliviate.data.dataset import _as_id_array
from obliviate.errors import (
    AlreadyDeletedError,
    ForgetAllError,
    InvalidInputError,
    UnknownIdsError,
)

__all__ = [
    "AlreadyDeletedError",
    "DCKMeans",
    "GaussianNaiveBayes",
    "MultinomialNaiveBayes",
    "QKMeans",
    "RidgeRegression",
    "content_sha256",
    "load_summation",
    "save_summation",
]


def _features(X: object, name: str = "X") -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric array of shape (n, d), got {type(X).__name__}.") from exc
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidInputError(f"{name} must have shape (n, d) with n, d >= 1, got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name} has NaN or infinite values; impute or drop those rows first.")
    return arr


def _train_ids(ids: object, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = _as_id_array(ids)
    if arr.shape != (n,):
        raise InvalidInputError(f"ids must give one id per row: got {arr.size} ids for {n} rows.")
    if len(np.unique(arr)) != n:
        raise InvalidInputError("ids must be unique: every training row needs its own stable id.")
    return arr


class _Rows:
    """The ids a model was trained on, which are still in, and the rows kept for subtraction."""

    def _init_rows(self, ids: np.ndarray, X: np.ndarray) -> None:
        self.train_ids = ids
        self.active = np.ones(len(ids), dtype=bool)
        self._X = X.copy()
        self._order = np.argsort(ids, kind="stable")

    @property
    def active_ids(self) -> np.ndarray:
        return self.train_ids[self.active].copy()

    @property
    def deleted_ids(self) -> np.ndarray:
        return self.train_ids[~self.active].copy()

    @property
    def n(self) -> int:
        return int(self.active.sum())

    def _positions(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Row positions of ``ids``; every check runs before anything changes."""
        ids = _as_id_array(ids)
        if ids.size == 0:
            raise InvalidInputError("delete() got no ids; name at least one training id.")
        uniq, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            raise InvalidInputError(
                f"ids {uniq[counts > 1][:10].tolist()} appear twice in one request; name each once."
            )
        where = np.minimum(np.searchsorted(self.train_ids, ids, sorter=self._order), len(self.train_ids) - 1)
        pos = self._order[where]
        unknown = self.train_ids[pos] != ids
        if np.any(unknown):
            raise UnknownIdsError(ids[unknown], where=f"this {type(self).__name__}'s training set")
        gone = ~self.active[pos]
        if np.any(gone):
            raise AlreadyDeletedError(ids[gone])
        if len(pos) >= self.n:
            raise ForgetAllError(self.n)
        return pos

    def _erase(self, pos: np.ndarray) -> None:
        self.active[pos] = False
        self._X[pos] = 0.0


# ---------------------------------------------------------------------------- naive Bayes
class _ClassRows(_Rows):
    def _init_labels(self, y: object, n: int, classes: object | None) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise InvalidInputError(f"y must have one label per row, shape ({n},), got {y.shape}.")
        self.classes_ = np.unique(y) if classes is None else np.asarray(classes)
        index = np.searchsorted(self.classes_, y)
        index = np.minimum(index, len(self.classes_) - 1)
        if np.any(self.classes_[index] != y):
            raise InvalidInputError("y has labels not in classes; list every label in classes=.")
        self._label = index.copy()
        return index

    def predict(self, X: object) -> np.ndarray:
        return self.classes_[np.argmax(self.joint_log_likelihood(_features(X)), axis=1)]


class GaussianNaiveBayes(_ClassRows):
    """Gaussian naive Bayes from per-class sums (Cao & Yang 2015, Sec. 4; scikit-learn's ``GaussianNB``).

    ``theta_cj = S_cj / n_c``, ``var_cj = Q_cj / n_c - theta_cj^2 + epsilon`` with ``S``, ``Q`` the
    sums of the (shifted) features and their squares, ``epsilon = var_smoothing max_j Var_D(x_j)``,
    priors ``n_c / n``. A class whose examples are all deleted keeps prior 0 (never predicted).
    """

    def __init__(self, *, var_smoothing: float = 1e-9) -> None:
        if not var_smoothing >= 0:
            raise InvalidInputError(f"var_smoothing must be >= 0, got {var_smoothing!r}.")
        self.var_smoothing = float(var_smoothing)

    def fit(self, X: object, y: object, *, ids: object = None, classes: object = None) -> GaussianNaiveBayes:
        X = _features(X)
        ids = _train_ids(ids, len(X))
        label = self._init_labels(y, len(X), classes)
        self._init_rows(ids, X)
        self.shift_ = X.mean(0)
        Z = X - self.shift_
        k = len(self.classes_)
        self._count = np.bincount(label, minlength=k).astype(np.float64)
        self._sum = np.zeros((k, X.shape[1]))
        self._sq = np.zeros((k, X.shape[1]))
        np.add.at(self._sum, label, Z)
        np.add.at(self._sq, label, Z * Z)
        self._refresh()
        return self

    def _refresh(self) -> None:
        n = self._count.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum / self._count[:, None]
            var = self._sq / self._count[:, None] - mean * mean
            total_mean = self._sum.sum(0) / n
            total_var = self._sq.sum(0) / n - total_mean**2
            self.epsilon_ = self.var_smoothing * float(total_var.max())
            self.theta_ = mean + self.shift_
            self.var_ = np.maximum(var, 0.0) + self.epsilon_
            self.class_prior_ = self._count / n

    def delete(self, ids: Iterable[int] | np.ndarray) -> GaussianNaiveBayes:
        """Subtract the examples' terms from the sums: O(d) per example."""
        pos = self._positions(ids)
        Z = self._X[pos] - self.shift_
        np.subtract.at(self._sum, self._label[pos], Z)
        np.subtract.at(self._sq, self._label[pos], Z * Z)
        np.subtract.at(self._count, self._label[pos], 1.0)
        self._erase(pos)
        self._refresh()
        return self

    def joint_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            jll = -0.5 * np.sum(np.log(2.0 * np.pi * self.var_), axis=1)[None] - 0.5 * (
                ((X[:, None, :] - self.theta_[None]) ** 2) / self.var_[None]
            ).sum(2)
            jll = jll + np.log(self.class_prior_)[None]
        return np.where(self._count[None] > 0, jll, -np.inf)


class MultinomialNaiveBayes(_ClassRows):
    """Multinomial naive Bayes from per-class feature counts (Cao & Yang 2015; scikit-learn's ``MultinomialNB``).

    ``log theta_cj = log(N_cj + alpha) - log(sum_j N_cj + alpha d)`` with ``N_cj`` the sum of feature
    ``j`` over class ``c``; ``log prior_c = log(n_c / n)``. Features must be non-negative counts.
    """

    def __init__(self, *, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise InvalidInputError(f"alpha must be > 0 (Lidstone smoothing), got {alpha!r}.")
        self.alpha = float(alpha)

    def fit(self, X: object, y: object, *, ids: object = None, classes: object = None) -> MultinomialNaiveBayes:
        X = _features(X)
        if np.any(X < 0):
            raise InvalidInputError("MultinomialNaiveBayes needs non-negative feature counts; X has negative values.")
        ids = _train_ids(ids, len(X))
        label = self._init_labels(y, len(X), classes)
        self._init_rows(ids, X)
        k = len(self.classes_)
        self._count = np.bincount(label, minlength=k).astype(np.float64)
        self.feature_count_ = np.zeros((k, X.shape[1]))
        np.add.at(self.feature_count_, label, X)
        self._refresh()
        return self

    def _refresh(self) -> None:
        smoothed = np.maximum(self.feature_count_, 0.0) + self.alpha
        self.feature_log_prob_ = np.log(smoothed) - np.log(smoothed.sum(1, keepdims=True))
        with np.errstate(divide="ignore"):
            self.class_log_prior_ = np.log(self._count) - math.log(self._count.sum())

    def delete(self, ids: Iterable[int] | np.ndarray) -> MultinomialNaiveBayes:
        """Subtract the examples' counts: O(d) per example."""
        pos = self._positions(ids)
        np.subtract.at(self.feature_count_, self._label[pos], self._X[pos])
        np.subtract.at(self._count, self._label[pos], 1.0)
        self._erase(pos)
        self._refresh()
        return self

    def joint_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        return X @ self.feature_log_prob_.T + self.class_log_prior_[None]


# ---------------------------------------------------------------------------- ridge
class RidgeRegression(_Rows):
    """Ridge regression from its sufficient statistics (Cao & Yang 2015, Sec. 4).

    Minimises ``||y - X w - w0||^2 + alpha ||w||^2`` (scikit-learn's ``Ridge`` objective, intercept
    unpenalised): with ``X~ = [X - m, 1]`` for a centre ``m`` fixed at fit time, the solution solves
    ``(X~^T X~ + alpha diag(1..1, 0)) [w; c] = X~^T y`` and ``w0 = c - m.w``. ``y`` is (n,) or
    (n, outputs). Deleting examples subtracts their outer products from the statistics and re-solves
    by Cholesky: exact (to float tolerance), O(k d^2 + d^3) per request of k examples.
    """

    def __init__(self, *, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise InvalidInputError(f"alpha must be > 0 (the solve needs a positive-definite system), got {alpha!r}.")
        self.alpha = float(alpha)

    def fit(self, X: object, y: object, *, ids: object = None) -> RidgeRegression:
        X = _features(X)
        y = np.asarray(y, dtype=np.float64)
        if y.shape[0] != len(X) or y.ndim not in (1, 2) or not np.isfinite(y).all():
            raise InvalidInputError(f"y must be finite with shape ({len(X)},) or ({len(X)}, outputs), got {y.shape}.")
        self._vector = y.ndim == 1
        Y = y[:, None] if self._vector else y
        self._init_rows(_train_ids(ids, len(X)), X)
        self._Y = Y.copy()
        self.shift_ = X.mean(0)
        Z = self._augment(X)
        self._A = Z.T @ Z
        self._b = Z.T @ Y
        self._solve()
        return self

    def _augment(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([X - self.shift_, np.ones((len(X), 1))])

    def _solve(self) -> None:
        d = self._A.shape[0] - 1
        A = self._A.copy()
        A[np.arange(d), np.arange(d)] += self.alpha
        sol = cho_solve(cho_factor(A), self._b)
        coef = sol[:d]
        intercept = sol[d] - self.shift_ @ coef
        self.coef_ = coef[:, 0] if self._vector else coef.T
        self.intercept_ = float(intercept[0]) if self._vector else intercept

    def delete(self, ids: Iterable[int] | np.ndarray) -> RidgeRegression:
        """Downdate the statistics by the examples' terms and re-solve from them (Cholesky)."""
        pos = self._positions(ids)
        Z = self._augment(self._X[pos])
        self._A -= Z.T @ Z
        self._b -= Z.T @ self._Y[pos]
        self._erase(pos)
        self._Y[pos] = 0.0
        self._solve()
        return self

    def predict(self, X: object) -> np.ndarray:
        X = _features(X)
        return X @ (self.coef_ if self._vector else self.coef_.T) + self.intercept_


# ---------------------------------------------------------------------------- Q-k-means
@dataclass(frozen=True)
class KMeansDeletion:
    """What one ``QKMeans.delete`` did: examples deleted in place and whether it re-ran Lloyd."""

    count: int
    in_place: int
    reran: bool
    reseeded: bool


class QKMeans(_Rows):
    """Quantised k-means with deletion (Ginart, Guan, Valiant, Zou, NeurIPS 2019, Algorithms 2-3).

    Training: seeds (k-means++ by default, as the paper, in scikit-learn's greedy form with
    ``2 + ln k`` candidates per seed; or ``init="random"``: k distinct rows uniformly), then ``iters`` quantised Lloyd iterations. Iteration t assigns every row to its
    nearest centroid ``C_t``, forms the cluster means ``mu_j = S_j / n_j`` and, for a cluster smaller
    than ``m = gamma n / k``, the balance correction ``(n_j / m) mu_j + (1 - n_j / m) C_t[j]``
    (the reference code's ``_momentum_correction``), then quantises to the epsilon-grid with a fresh
    uniform phase ``theta_t``: ``C_{t+1} = eps (round(c / eps + theta_t - 1/2) - theta_t + 1/2)``.
    The model is ``C_T``. Kept per iteration: ``C_t``, the sums ``S_j``, the counts ``n_j``, ``theta_t``.

    Deletion of x (Algorithm 3): if x is a seed the run is redone on ``D \\ x`` with new seeds.
    Otherwise for every iteration x's cluster sum and count are downdated, every cluster's corrected
    centroid is recomputed (``m`` depends on n, so all of them) and quantised with the stored
    phase; if every quantised centroid (its integer grid index) is unchanged the run on ``D \\ x``
    with the same seeds and phases is the stored run minus x, so the stored metadata are updated in
    O(T k d). If any moves, Lloyd is re-run on ``D \\ x`` with the same seeds and phases.

    Guarantee checked by the tests: after any sequence of deletions the model (centroids and the
    recorded run) equals ``QKMeans`` trained on the remaining rows with the same seeds and phases
    (``fit(..., seeds=model.seed_ids, phases=model.phases_)``), and a seed's deletion draws new
    seeds. Ginart et al.'s validity is in distribution (their Definition 3.1: the output after
    deleting x is distributed as the algorithm's output on ``D \\ x``). With ``init="random"`` the
    seeds given that x is not one of them are uniform on ``D \\ x``, so reusing them (and the phases,
    independent of the data) is exactly valid. With k-means++ seeds this holds only approximately:
    the D^2 sampling probabilities of the other rows change slightly when x leaves (the paper and the
    reference code treat only the seeded case); use ``init="random"`` when exact validity matters.
    """

    def __init__(
        self, k: int, *, eps: float, iters: int = 10, gamma: float = 0.2, init: str = "k-means++", seed: int = 0
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1, got {k!r}.")
        if not eps > 0:
            raise InvalidInputError(f"eps (the quantisation grid) must be > 0, got {eps!r}.")
        if isinstance(iters, bool) or not isinstance(iters, int | np.integer) or iters < 1:
            raise InvalidInputError(f"iters must be an integer >= 1, got {iters!r}.")
        if not 0 < gamma <= 1:
            raise InvalidInputError(f"gamma (balance correction) must be in (0, 1], got {gamma!r}.")
        if init not in ("k-means++", "random"):
            raise InvalidInputError(f"init must be 'k-means++' or 'random', got {init!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidInputError(f"seed must be an integer >= 0, got {seed!r}.")
        self.k, self.eps, self.iters, self.gamma, self.init, self.seed = (
            int(k),
            float(eps),
            int(iters),
            float(gamma),
            init,
            int(seed),
        )
        self.reruns = 0
        self.reseeds = 0
        self.in_place = 0

    # ------------------------------------------------------------------ training
    def fit(self, X: object, *, ids: object = None, seeds: object = None, phases: object = None) -> QKMeans:
        """Train on X; ``seeds`` (ids of the initial centroids) and ``phases`` (iters, d) replay a run."""
        X = _features(X)
        if len(X) < self.k:
            raise InvalidInputError(f"k={self.k} clusters need at least k rows, got {len(X)}.")
        self._init_rows(_train_ids(ids, len(X)), X)
        rng = np.random.default_rng((self.seed, 0))
        self.phases_ = rng.random((self.iters, X.shape[1])) if phases is None else np.asarray(phases, dtype=np.float64)
        if self.phases_.shape != (self.iters, X.shape[1]):
            raise InvalidInputError(f"phases must have shape ({self.iters}, {X.shape[1]}), got {self.phases_.shape}.")
        if seeds is None:
            self.seed_ids = self._draw_seeds(rng)
        else:
            self.seed_ids = _as_id_array(seeds)
            self._positions_of(self.seed_ids)  # checks they are training ids
        self._lloyd()
        return self

    def _positions_of(self, ids: np.ndarray) -> np.ndarray:
        where = np.minimum(np.searchsorted(self.train_ids, ids, sorter=self._order), len(self.train_ids) - 1)
        pos = self._order[where]
        if np.any(self.train_ids[pos] != ids) or len(ids) != self.k or np.any(~self.active[pos]):
            raise InvalidInputError(f"seeds must be {self.k} distinct ids of rows still in the model.")
        return pos

    def _draw_seeds(self, rng: np.random.Generator) -> np.ndarray:
        live = np.flatnonzero(self.active)
        X = self._X[live]
        if self.init == "random":
            return self.train_ids[live[rng.choice(len(live), self.k, replace=False)]]
        trials = 2 + int(math.log(self.k))  # greedy k-means++ (scikit-learn's n_local_trials)
        chosen = [int(rng.integers(len(live)))]
        d2 = ((X - X[chosen[0]]) ** 2).sum(1)
        for _ in range(1, self.k):
            total = d2.sum()
            if total <= 0:  # fewer distinct points than k: take any unchosen row
                rest = np.setdiff1d(np.arange(len(live)), chosen)
                nxt = int(rest[rng.integers(len(rest))])
                new_d2 = np.minimum(d2, ((X - X[nxt]) ** 2).sum(1))
            else:
                cands = rng.choice(len(live), size=trials, p=d2 / total)
                pots = [np.minimum(d2, ((X - X[c]) ** 2).sum(1)) for c in cands]
                best = int(np.argmin([p.sum() for p in pots]))
                nxt, new_d2 = int(cands[best]), pots[best]
            chosen.append(nxt)
            d2 = new_d2
        return self.train_ids[live[np.array(chosen)]]

    def _assign(self, X: np.ndarray, C: np.ndarray) -> np.ndarray:
        d2 = (X * X).sum(1)[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None]
        return np.argmin(d2, axis=1)

    def _grid(self, c: np.ndarray, t: int) -> np.ndarray:
        return np.round(c / self.eps + self.phases_[t] - 0.5)

    def _from_grid(self, g: np.ndarray, t: int) -> np.ndarray:
        return (g - self.phases_[t] + 0.5) * self.eps

    def _corrected(self, S: np.ndarray, N: np.ndarray, C: np.ndarray, n: int) -> np.ndarray:
        m = self.gamma * n / self.k
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = S / N[:, None]
        small = N < m
        out = mean.copy()
        if np.any(small):  # (n_j / m) mu_j + (1 - n_j / m) C_j, written without 0/0 for empty clusters
            out[small] = (S[small] + (m - N[small])[:, None] * C[small]) / m
        return out

    def _lloyd(self) -> None:
        live = np.flatnonzero(self.active)
        X = self._X[live]
        n = len(live)
        C = self._X[self._positions_of(self.seed_ids)].copy()
        T, k, d = self.iters, self.k, X.shape[1]
        self.centroids_path_ = np.zeros((T + 1, k, d))
        self.grid_path_ = np.zeros((T, k, d))
        self.sums_ = np.zeros((T, k, d))
        self.counts_ = np.zeros((T, k))
        self.centroids_path_[0] = C
        for t in range(T):
            a = self._assign(X, C)
            S = np.zeros((k, d))
            np.add.at(S, a, X)
            N = np.bincount(a, minlength=k).astype(np.float64)
            g = self._grid(self._corrected(S, N, C, n), t)
            self.sums_[t], self.counts_[t], self.grid_path_[t] = S, N, g
            C = self._from_grid(g, t)
            self.centroids_path_[t + 1] = C
        self.cluster_centers_ = C

    # ------------------------------------------------------------------ deletion
    def _try_in_place(self, x: np.ndarray) -> bool:
        """Algorithm 3's invariance check for one row; updates the metadata only when it passes."""
        n = self.n - 1
        new_S, new_N = self.sums_.copy(), self.counts_.copy()
        for t in range(self.iters):
            C = self.centroids_path_[t]
            j = int(self._assign(x[None], C)[0])
            new_S[t, j] -= x
            new_N[t, j] -= 1.0
            if not np.array_equal(self._grid(self._corrected(new_S[t], new_N[t], C, n), t), self.grid_path_[t]):
                return False
        self.sums_, self.counts_ = new_S, new_N
        return True

    def delete(self, ids: Iterable[int] | np.ndarray) -> KMeansDeletion:
        """Delete rows one by one in place while the quantised run is invariant; else re-run once."""
        pos = self._positions(ids)
        if self.n - len(pos) < self.k:
            raise InvalidInputError(
                f"deleting {len(pos)} rows would leave {self.n - len(pos)} < k={self.k}; delete fewer or refit with a smaller k."
            )
        seeds = set(self.seed_ids.tolist())
        reseed = any(int(self.train_ids[p]) in seeds for p in pos)
        done = 0
        if not reseed:
            for p in pos:
                if not self._try_in_place(self._X[p]):
                    break
                self._erase(np.array([p]))
                done += 1
        rest = pos[done:]
        if len(rest):
            self._erase(rest)
            if reseed:
                self.reseeds += 1
                self.seed_ids = self._draw_seeds(np.random.default_rng((self.seed, 1, self.reseeds)))
            self.reruns += 1
            self._lloyd()
        self.in_place += done
        return KMeansDeletion(len(pos), done, bool(len(rest)), reseed)

    def predict(self, X: object) -> np.ndarray:
        return self._assign(_features(X), self.cluster_centers_)

    def loss(self, X: object) -> float:
        """Mean squared distance of X's rows to their nearest centroid (the k-means objective / n)."""
        X = _features(X)
        return float(((X - self.cluster_centers_[self._assign(X, self.cluster_centers_)]) ** 2).sum(1).mean())


# ---------------------------------------------------------------------------- DC-k-means
def _leaf_of(ids: np.ndarray, seed: int, leaves: int) -> np.ndarray:
    """A leaf per id from a seeded splitmix64 hash: uniform, independent across ids, the same in every refit."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(leaves)).astype(np.int64)


def _weighted_lloyd(
    X: np.ndarray, w: np.ndarray, k: int, iters: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (greedy k-means++ seeds, ``iters`` Lloyd steps): centroids (k', d) and cluster weights."""
    if len(X) <= k:
        return X.copy(), w.copy()
    trials = 2 + int(math.log(k))
    first = int(rng.choice(len(X), p=w / w.sum()))
    C = [X[first]]
    d2 = ((X - X[first]) ** 2).sum(1)
    for _ in range(1, k):
        p = w * d2
        if p.sum() <= 0:
            break
        cands = rng.choice(len(X), size=trials, p=p / p.sum())
        pots = [np.minimum(d2, ((X - X[c]) ** 2).sum(1)) for c in cands]
        best = int(np.argmin([(w * q).sum() for q in pots]))
        C.append(X[cands[best]])
        d2 = pots[best]
    C = np.array(C)
    for _ in range(iters):
        a = np.argmin((X * X).sum(1)[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None], axis=1)
        W = np.bincount(a, weights=w, minlength=len(C))
        S = np.zeros_like(C)
        np.add.at(S, a, X * w[:, None])
        nonempty = W > 0
        C[nonempty] = S[nonempty] / W[nonempty, None]
    a = np.argmin((X * X).sum(1)[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None], axis=1)
    return C, np.bincount(a, weights=w, minlength=len(C))


class DCKMeans(_Rows):
    """Divide-and-conquer k-means with deletion (Ginart et al. NeurIPS 2019, Sec. 3.2, DC-k-means).

    A tree of height 1: each row goes to one of ``leaves`` leaves by a seeded hash of its id
    (uniform and independent, so the remaining rows' partition is that of a fresh run on them);
    each leaf runs k-means on its rows (greedy k-means++ seeds drawn from ``(seed, leaf)``, ``iters``
    Lloyd steps) and the root runs weighted k-means on the leaves' centroids, weighted by their
    cluster sizes (the reference code's root treats them unweighted). Deleting rows reruns only
    their leaves and the root: O((n / leaves + leaves k) k d iters) per request, against
    O(n k d iters) for a fit. Every node's randomness is a function of the seed and the node, so a
    deletion equals the fit on the remaining rows exactly (the tests check equality).
    """

    def __init__(self, k: int, *, leaves: int, iters: int = 10, seed: int = 0) -> None:
        for name, value, low in (("k", k, 1), ("leaves", leaves, 1), ("iters", iters, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}.")
        self.k, self.leaves, self.iters, self.seed = int(k), int(leaves), int(iters), int(seed)

    def fit(self, X: object, *, ids: object = None) -> DCKMeans:
        X = _features(X)
        if len(X) < self.k:
            raise InvalidInputError(f"k={self.k} clusters need at least k rows, got {len(X)}.")
        self._init_rows(_train_ids(ids, len(X)), X)
        self.leaf_ = _leaf_of(self.train_ids, self.seed, self.leaves)
        d = X.shape[1]
        self.leaf_centers_ = np.zeros((self.leaves, self.k, d))
        self.leaf_weights_ = np.zeros((self.leaves, self.k))
        for leaf in range(self.leaves):
            self._fit_leaf(leaf)
        self._fit_root()
        return self

    def _fit_leaf(self, leaf: int) -> None:
        rows = np.flatnonzero(self.active & (self.leaf_ == leaf))
        rng = np.random.default_rng((self.seed, 1, leaf))
        C, W = _weighted_lloyd(self._X[rows], np.ones(len(rows)), self.k, self.iters, rng)
        self.leaf_centers_[leaf] = 0.0
        self.leaf_weights_[leaf] = 0.0
        self.leaf_centers_[leaf, : len(C)] = C
        self.leaf_weights_[leaf, : len(C)] = W

    def _fit_root(self) -> None:
        keep = self.leaf_weights_.reshape(-1) > 0
        C = self.leaf_centers_.reshape(-1, self.leaf_centers_.shape[2])[keep]
        W = self.leaf_weights_.reshape(-1)[keep]
        self.cluster_centers_, _ = _weighted_lloyd(C, W, self.k, self.iters, np.random.default_rng((self.seed, 2)))

    def delete(self, ids: Iterable[int] | np.ndarray) -> DCKMeans:
        """Remove rows, rerun their leaves and the root."""
        pos = self._positions(ids)
        self._erase(pos)
        for leaf in np.unique(self.leaf_[pos]):
            self._fit_leaf(int(leaf))
        self._fit_root()
        return self

    def predict(self, X: object) -> np.ndarray:
        X = _features(X)
        C = self.cluster_centers_
        return np.argmin((X * X).sum(1)[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None], axis=1)

    def loss(self, X: object) -> float:
        """Mean squared distance of X's rows to their nearest centroid."""
        X = _features(X)
        return float(((X - self.cluster_centers_[self.predict(X)]) ** 2).sum(1).mean())


# ---------------------------------------------------------------------------- files
LEARNERS = {
    cls.__name__: cls for cls in (GaussianNaiveBayes, MultinomialNaiveBayes, RidgeRegression, QKMeans, DCKMeans)
}
_FORMAT = "obliviate.summation/1"


def _state(model: _Rows) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    arrays, scalars = {}, {}
    for key, value in vars(model).items():
        if isinstance(value, np.ndarray):
            arrays[key] = value
        elif isinstance(value, bool | int | float | str | type(None)):
            scalars[key] = value
    return arrays, scalars


def content_sha256(model: _Rows) -> str:
    """sha256 over the learner's class, scalar settings and every array (names, dtypes, shapes, bytes)."""
    import hashlib

    arrays, scalars = _state(model)
    h = hashlib.sha256(type(model).__name__.encode())
    h.update(json.dumps(scalars, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_summation(model: _Rows, path: str | Path, *, metadata: dict | None = None) -> str:
    """Write a fitted learner to ``path`` (an .npz read without pickle), atomically; returns its sha256.

    ``metadata`` (JSON-able) travels in the file; the ledger keeps the data fingerprint, the ids
    deleted so far and its last batch record there.
    """
    from obliviate.storage import atomic_write_bytes

    if type(model).__name__ not in LEARNERS or not hasattr(model, "train_ids"):
        raise InvalidInputError(
            f"save_summation takes a fitted learner of {sorted(LEARNERS)}, got {type(model).__name__}."
        )
    arrays, scalars = _state(model)
    digest = content_sha256(model)
    header = {
        "format": _FORMAT,
        "learner": type(model).__name__,
        "scalars": scalars,
        "sha256": digest,
        "metadata": metadata or {},
    }
    buffer = io.BytesIO()
    np.savez(buffer, __header__=np.array(json.dumps(header, sort_keys=True)), **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return digest


def load_summation(path: str | Path) -> tuple[_Rows, dict]:
    """A learner written by :func:`save_summation` and the file's header (``sha256``, ``metadata``).

    Never unpickles; a file that is not such a learner is :class:`~obliviate.errors.InvalidInputError`.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(str(npz["__header__"]))
            arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"{path} is not a readable summation-learner file ({exc}); write it with save_summation."
        ) from exc
    if header.get("format") != _FORMAT or header.get("learner") not in LEARNERS:
        raise InvalidInputError(f"{path} is not a summation-learner file (format {header.get('format')!r}).")
    model = LEARNERS[header["learner"]].__new__(LEARNERS[header["learner"]])
    vars(model).update(header["scalars"])
    vars(model).update(arrays)
    return model, header
