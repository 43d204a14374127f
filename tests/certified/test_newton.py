"""Certified removal (Guo et al. 2020): the Newton step, its residual bound, the budget, the unlearner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import obliviate as ob
from obliviate.certified.logistic import (
    AlreadyRemovedError,
    CertifiedLogisticRegression,
    _signed_labels,
    c_for_delta,
    fit_certified,
    fit_logistic,
    newton_removal,
    objective_gradient,
)
from obliviate.errors import BudgetExhaustedError, InvalidInputError, UnknownIdsError, UnsupportedModelError


def _problem(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + rng.normal(size=(classes, d))[rng.integers(0, classes, n)]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.integers(0, classes, n)
    y[:classes] = np.arange(classes)
    return X, _signed_labels(y, classes)


@pytest.fixture(scope="module")
def small():
    return ob.data.synthetic(240, 6, 3, seed=0)


@pytest.mark.parametrize("classes", [2, 4])
def test_noise_free_newton_removal_lands_on_the_exact_minimiser(classes):
    X, Y = _problem(300, 8, classes, seed=classes)
    lam = 1e-2
    W, _ = fit_logistic(X, Y, lam)
    keep = np.ones(len(X), dtype=bool)
    keep[7] = False
    step = newton_removal(X[keep], Y[keep], X[~keep], Y[~keep], W, lam)
    exact, _ = fit_logistic(X[keep], Y[keep], lam)
    moved = np.abs(exact - W).max()
    assert moved > 1e-3  # the point mattered, so landing close is not trivial
    assert np.abs(W + step.update - exact).max() < 1e-4


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(12, 60),
    d=st.integers(2, 6),
    classes=st.sampled_from([2, 3]),
    k=st.integers(1, 4),
    log_lam=st.floats(-3.0, 0.0),
    sigma=st.floats(0.0, 2.0),
    seed=st.integers(0, 10_000),
)
def test_residual_bound_is_never_below_the_true_gradient_norm(n, d, classes, k, log_lam, sigma, seed):
    X, Y = _problem(n, d, classes, seed)
    lam = 10.0**log_lam
    b = sigma * np.random.default_rng(seed + 1).standard_normal((d, Y.shape[1]))
    W, G0 = fit_logistic(X, Y, lam, b)
    start = np.linalg.norm(G0, axis=0)
    keep = np.ones(n, dtype=bool)
    keep[:k] = False  # two successive removals: the first k points, then one more
    first = newton_removal(X[keep], Y[keep], X[~keep], Y[~keep], W, lam)
    W1 = W + first.update
    true1 = np.linalg.norm(objective_gradient(X[keep], Y[keep], W1, lam, b), axis=0)
    assert np.all(true1 <= start + first.bound + 1e-10)
    keep2 = keep.copy()
    keep2[k] = False
    second = newton_removal(X[keep2], Y[keep2], X[k : k + 1], Y[k : k + 1], W1, lam)
    true2 = np.linalg.norm(objective_gradient(X[keep2], Y[keep2], W1 + second.update, lam, b), axis=0)
    assert np.all(true2 <= start + first.bound + second.bound + 1e-10)


def test_budget_triggers_a_retrain_exactly_when_the_next_bound_would_exceed_it(small):
    model = fit_certified(small, epsilon=0.5, delta=1e-3, lam=0.05, sigma=0.2, seed=1)
    assert model.budget == pytest.approx(0.2 * 0.5 / c_for_delta(1e-3))
    retrained, kept = 0, 0
    for i in small.sample_ids(30, seed=2):
        before_b = model.b.clone()
        bound = model.removal_bound([i]).bound
        expected = np.linalg.norm(model.residual.numpy() + bound) > model.budget
        record = model.remove([i])
        assert record.retrained == expected
        if expected:
            retrained += 1
            assert model.spent < 1e-8  # fresh fit: only the solver's residual is left
            assert not torch.equal(model.b, before_b)  # with fresh noise
            X, Y = model._arrays(model.active.numpy())
            grad = objective_gradient(X, Y, model.weight.detach().numpy(), model.lam, model.b.numpy())
            assert np.linalg.norm(grad) < 1e-6
        else:
            kept += 1
            assert model.spent <= model.budget
    assert retrained >= 1 and kept >= 5
    assert model.retrains == retrained


def test_refuse_raises_and_leaves_the_model_unchanged(small):
    model = fit_certified(small, lam=0.05, sigma=0.2, policy="refuse", seed=0)
    ids = iter(small.sample_ids(40, seed=3))
    with pytest.raises(BudgetExhaustedError, match="budget"):
        for _ in range(40):
            i = next(ids)
            weight, active = model.weight.detach().clone(), model.active.clone()
            model.remove([i])
    assert torch.equal(model.weight, weight) and torch.equal(model.active, active)
    assert model.retrains == 0


def test_unlearn_accumulates_the_budget_across_requests(small):
    model = fit_certified(small, lam=0.1, sigma=1.0, epsilon=2.0, delta=1e-5, seed=0)
    ids = small.sample_ids(4, seed=5)
    first = ob.unlearn(model, ids[:2], small, method="certified_newton")
    assert first.guarantee == ob.unlearning.base.Guarantee("certified", 2.0, 1e-5)
    assert model.spent < first.model.spent and len(model.removed_ids) == 0  # the input is untouched
    second = ob.unlearn(first.model, ids[2:], small, method="certified_newton")
    assert second.model.spent > first.model.spent
    assert sorted(second.model.removed_ids) == sorted(ids)
    with pytest.raises(AlreadyRemovedError):
        ob.unlearn(second.model, ids[:1], small, method="certified_newton")
    # the certified model is close to the one retrained on the remaining data with the same noise
    X, Y = second.model._arrays(second.model.active.numpy())
    exact, _ = fit_logistic(X, Y, model.lam, model.b.numpy())
    assert np.abs(second.model.weight.detach().numpy() - exact).max() < 1e-3


def test_binary_model_and_frozen_extractor_give_logits():
    data = ob.data.synthetic(200, 5, 2, seed=3)
    extractor = nn.Sequential(nn.Linear(5, 4), nn.Tanh())
    model = fit_certified(data, features=extractor, seed=0)
    x = data.tensors[0][:10]
    logits = model(x)
    assert logits.shape == (10, 2) and model.weight.shape == (4, 1)
    z = model.embed(x) @ model.weight
    assert torch.allclose(torch.softmax(logits, 1)[:, 1].double(), torch.sigmoid(z[:, 0]), atol=1e-6)
    assert not any(p.requires_grad for p in extractor.parameters())
    out = ob.unlearn(model, data.ids[:3], data, method="certified_newton").model
    assert out(x).shape == (10, 2)


def test_training_is_deterministic_in_the_seed(small):
    a, b = fit_certified(small, seed=4), fit_certified(small, seed=4)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, fit_certified(small, seed=5).weight)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"lam": 0.0}, "lam"),
        ({"sigma": -1.0}, "sigma"),
        ({"delta": 1e-5, "c": 1.0}, "c="),
        ({"policy": "ignore"}, "policy"),
    ],
)
def test_bad_settings_raise(small, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        fit_certified(small, **kwargs)


def test_bad_removals_raise(small):
    model = fit_certified(small, seed=0)
    with pytest.raises(UnknownIdsError):
        model.remove([10_000])
    model.remove([small.ids[0]])
    with pytest.raises(AlreadyRemovedError):
        model.remove([small.ids[0]])
    with pytest.raises(InvalidInputError, match="twice"):
        model.remove([small.ids[1], small.ids[1]])
    with pytest.raises(InvalidInputError, match="policy"):
        ob.unlearn(model, small.ids[2:3], small, method="certified_newton", settings={"policy": "maybe"})
    assert isinstance(model, CertifiedLogisticRegression)


def test_non_convex_model_is_refused(small):
    mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(UnsupportedModelError, match="CertifiedLogisticRegression"):
        ob.unlearn(mlp, small.ids[:2], small, method="certified_newton")
