"""Summation-form exact deletion: a delete equals retraining without the examples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.naive_bayes import GaussianNB, MultinomialNB

from obliviate.errors import ForgetAllError, InvalidInputError, UnknownIdsError
from obliviate.exact.summation import (
    AlreadyDeletedError,
    DCKMeans,
    GaussianNaiveBayes,
    MultinomialNaiveBayes,
    QKMeans,
    RidgeRegression,
)

TOL = 1e-9


def _data(n=600, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.normal(size=(n, d)) + 2.0 * rng.normal(size=(classes, d))[y] + 5.0  # a large mean: tests the shift
    ids = rng.permutation(10 * n)[:n] + 1000
    return X, y, ids


def _without(ids, X, y, gone):
    keep = ~np.isin(ids, gone)
    return X[keep], y[keep], ids[keep]


def test_gaussian_nb_delete_equals_retrain_and_matches_sklearn():
    X, y, ids = _data()
    model = GaussianNaiveBayes().fit(X, y, ids=ids)
    ref = GaussianNB().fit(X, y)
    assert np.abs(model.theta_ - ref.theta_).max() <= TOL and np.abs(model.var_ - ref.var_).max() <= TOL
    gone = ids[[3, 17, 50, 51, 400]]
    model.delete(gone[:2]).delete(gone[2:])
    Xr, yr, idr = _without(ids, X, y, gone)
    fresh = GaussianNaiveBayes().fit(Xr, yr, ids=idr)
    assert np.abs(model.theta_ - fresh.theta_).max() <= TOL
    assert np.abs(model.var_ - fresh.var_).max() <= TOL
    assert np.abs(model.class_prior_ - fresh.class_prior_).max() <= TOL
    before = GaussianNaiveBayes().fit(X, y, ids=ids)
    assert np.abs(before.theta_ - fresh.theta_).max() > 1e-4  # the deletion moved the model
    ref = GaussianNB().fit(Xr, yr)
    assert np.abs(model.var_ - ref.var_).max() <= TOL
    np.testing.assert_array_equal(model.predict(X), ref.predict(X))


def test_multinomial_nb_delete_equals_retrain_and_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 500)
    X = rng.poisson(lam=1.0 + 3.0 * rng.random((4, 20))[y]).astype(float)
    ids = np.arange(500)
    model = MultinomialNaiveBayes(alpha=0.5).fit(X, y, ids=ids)
    gone = rng.choice(500, 40, replace=False)
    model.delete(gone)
    keep = ~np.isin(ids, gone)
    fresh = MultinomialNaiveBayes(alpha=0.5).fit(X[keep], y[keep])
    ref = MultinomialNB(alpha=0.5).fit(X[keep], y[keep])
    assert np.abs(model.feature_log_prob_ - fresh.feature_log_prob_).max() <= TOL
    assert np.abs(model.feature_log_prob_ - ref.feature_log_prob_).max() <= TOL
    assert np.abs(model.class_log_prior_ - ref.class_log_prior_).max() <= TOL


@pytest.mark.parametrize("outputs", [None, 3])
def test_ridge_delete_equals_retrain_and_matches_sklearn(outputs):
    X, _, ids = _data(n=800, d=12, seed=2)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(12,) if outputs is None else (12, outputs))
    y = X @ W + 0.3 * rng.normal(size=(800,) if outputs is None else (800, outputs)) + 1.5
    model = RidgeRegression(alpha=2.0).fit(X, y, ids=ids)
    gone = ids[rng.choice(800, 25, replace=False)]
    for i in gone:  # sequential single deletes accumulate no drift beyond the tolerance
        model.delete([i])
    keep = ~np.isin(ids, gone)
    fresh = RidgeRegression(alpha=2.0).fit(X[keep], y[keep], ids=ids[keep])
    ref = Ridge(alpha=2.0, solver="cholesky").fit(X[keep], y[keep])
    assert np.abs(model.coef_ - fresh.coef_).max() <= TOL
    assert np.abs(np.asarray(model.intercept_) - np.asarray(fresh.intercept_)).max() <= TOL
    assert np.abs(model.coef_ - ref.coef_).max() <= 1e-8
    original = RidgeRegression(alpha=2.0).fit(X, y, ids=ids)
    assert np.abs(original.coef_ - fresh.coef_).max() > 1e-5


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianNaiveBayes(),
        lambda: MultinomialNaiveBayes(),
        lambda: RidgeRegression(),
    ],
)
def test_bad_deletes_are_typed_errors_and_leave_the_model_unchanged(make):
    X, y, ids = _data(n=50, d=4, seed=4)
    X = np.abs(X)
    model = make().fit(X, y.astype(float) if isinstance(make(), RidgeRegression) else y, ids=ids)
    model.delete([ids[0]])
    snapshot = {k: np.copy(v) for k, v in vars(model).items() if isinstance(v, np.ndarray)}
    with pytest.raises(AlreadyDeletedError, match="already deleted"):
        model.delete([ids[1], ids[0]])
    with pytest.raises(UnknownIdsError, match="training set"):
        model.delete([ids[2], 7])
    with pytest.raises(InvalidInputError, match="twice"):
        model.delete([ids[2], ids[2]])
    with pytest.raises(ForgetAllError):
        model.delete(ids[1:])
    for key, value in snapshot.items():
        np.testing.assert_array_equal(getattr(model, key), value, err_msg=key)
    assert model.active[1] and model.active[2]


def _blobs(n=900, seed=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(4, 3))
    return centres[rng.integers(0, 4, n)] + rng.normal(size=(n, 3)), np.arange(n) * 3 + 11


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_q_kmeans_delete_equals_the_run_on_the_remaining_rows_with_the_same_randomness(init):
    X, ids = _blobs()
    model = QKMeans(4, eps=0.5, iters=8, init=init, seed=1).fit(X, ids=ids)
    rng = np.random.default_rng(6)
    order = rng.permutation(ids)
    gone = [i for i in order if i not in set(model.seed_ids.tolist())][:60]
    for i in gone:
        model.delete([i])
    assert model.in_place >= 40  # most deletions do not move a quantised centroid
    keep = ~np.isin(ids, gone)
    replay = QKMeans(4, eps=0.5, iters=8, init=init, seed=1).fit(
        X[keep], ids=ids[keep], seeds=model.seed_ids, phases=model.phases_
    )
    np.testing.assert_array_equal(model.cluster_centers_, replay.cluster_centers_)
    np.testing.assert_array_equal(model.grid_path_, replay.grid_path_)
    np.testing.assert_array_equal(model.counts_, replay.counts_)
    assert np.abs(model.sums_ - replay.sums_).max() <= TOL


def test_q_kmeans_reruns_when_a_quantised_centroid_moves_and_reseeds_when_a_seed_goes():
    X, ids = _blobs(n=60, seed=7)
    model = QKMeans(4, eps=0.05, iters=5, seed=2).fit(X, ids=ids)  # a fine grid: one point moves a centroid
    seed_id = int(model.seed_ids[0])
    record = model.delete([seed_id])
    assert record.reseeded and record.reran and seed_id not in model.seed_ids
    other = next(int(i) for i in model.active_ids if i not in set(model.seed_ids.tolist()))
    record = model.delete([other])
    assert record.reran and not record.reseeded
    keep = ~np.isin(ids, [seed_id, other])
    replay = QKMeans(4, eps=0.05, iters=5, seed=2).fit(
        X[keep], ids=ids[keep], seeds=model.seed_ids, phases=model.phases_
    )
    np.testing.assert_array_equal(model.cluster_centers_, replay.cluster_centers_)
    with pytest.raises(AlreadyDeletedError):
        model.delete([other])
    with pytest.raises(InvalidInputError, match="< k"):
        model.delete(model.active_ids[: model.n - 3])


def test_dc_kmeans_delete_equals_the_fit_on_the_remaining_rows():
    X, ids = _blobs(n=1200, seed=9)
    model = DCKMeans(4, leaves=6, iters=6, seed=3).fit(X, ids=ids)
    start = model.cluster_centers_.copy()
    rng = np.random.default_rng(10)
    gone = rng.choice(ids, 30, replace=False)
    model.delete(gone[:1])
    model.delete(gone[1:])
    keep = ~np.isin(ids, gone)
    fresh = DCKMeans(4, leaves=6, iters=6, seed=3).fit(X[keep], ids=ids[keep])
    np.testing.assert_array_equal(model.leaf_centers_, fresh.leaf_centers_)
    np.testing.assert_array_equal(model.cluster_centers_, fresh.cluster_centers_)
    assert not np.array_equal(start, model.cluster_centers_)  # the deletions changed the leaves and the root
    assert np.bincount(model.leaf_[model.active], minlength=6).min() > 100  # the hash spreads rows over leaves
    with pytest.raises(AlreadyDeletedError):
        model.delete(gone[:1])
