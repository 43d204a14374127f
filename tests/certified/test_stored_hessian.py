"""Certified removal from the stored, downdated Hessian: the bound, the budget, agreement with Guo et al.'s loop."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import obliviate as ob
from obliviate.certified.logistic import AlreadyRemovedError, fit_certified, fit_logistic, objective_gradient
from obliviate.certified.stored_hessian import StoredHessianLogisticRegression, fit_stored_hessian, with_stored_hessian
from obliviate.errors import BudgetExhaustedError, ForgetAllError, InvalidInputError, UnknownIdsError


def _true_residual(model) -> np.ndarray:
    X, Y = model._arrays(model.active.numpy())
    return np.linalg.norm(objective_gradient(X, Y, model.weight.detach().numpy(), model.lam, model.b.numpy()), axis=0)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), classes=st.sampled_from([2, 3]), log_lam=st.floats(-3.0, -1.5))
def test_bound_dominates_the_true_gradient_residual_over_100_sequential_removals(seed, classes, log_lam):
    data = ob.data.synthetic(400, 5, classes, seed=seed, separation=0.5)
    model = fit_stored_hessian(data, lam=10.0**log_lam, sigma=1.0, epsilon=1e6, seed=seed, policy="refuse")
    order = data.sample_ids(100, seed=seed + 1)
    worst = 0.0
    for i in order:
        model.remove([i])
        true = _true_residual(model)
        bound = model.residual.numpy()
        assert np.all(true <= bound + 1e-10), (true, bound)
        worst = max(worst, float((true / bound).max()))
    assert model.removed_since == 100 and model.retrains == 0
    assert worst > 1e-3  # the bound is not vacuous: the true residual reaches a visible share of it


def test_first_removal_matches_guo_et_al_loop_and_many_land_near_the_exact_minimiser():
    data = ob.data.synthetic(300, 6, 3, seed=1, separation=0.5)
    guo = fit_certified(data, lam=0.02, sigma=0.5, epsilon=1e6, seed=0, policy="refuse")
    fast = with_stored_hessian(copy.deepcopy(guo))
    ids = data.sample_ids(30, seed=2)
    guo.remove(ids[:1])
    fast.remove(ids[:1])
    assert torch.allclose(guo.weight, fast.weight, atol=1e-8, rtol=0)  # same step: exact Hessian at w^ on D'
    for i in ids[1:]:
        fast.remove([i])
    X, Y = fast._arrays(fast.active.numpy())
    exact, _ = fit_logistic(X, Y, fast.lam, fast.b.numpy())
    start = fit_certified(data, lam=0.02, sigma=0.5, epsilon=1e6, seed=0).weight.detach().numpy()
    moved = np.abs(exact - start).max()
    err = np.abs(fast.weight.detach().numpy() - exact).max()
    assert moved > 1e-3 and err < 0.05 * moved


def test_refuse_leaves_everything_unchanged_and_retrain_reanchors():
    data = ob.data.synthetic(240, 6, 3, seed=0)
    model = fit_stored_hessian(data, lam=0.05, sigma=0.2, seed=0, policy="refuse")
    ids = iter(data.sample_ids(200, seed=3))
    with pytest.raises(BudgetExhaustedError, match="budget"):
        for _ in range(200):
            i = next(ids)
            before = {k: v.clone() for k, v in model.state_dict().items()}
            since = model.removed_since
            model.remove([i])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.removed_since == since > 0 and model.spent <= model.budget
    record = model.remove([i], policy="retrain")
    assert record.retrained and model.removed_since == 0 and model.spent < 1e-8
    assert torch.equal(model.anchor, model.weight.detach())
    X, Y = model._arrays(model.active.numpy())
    assert np.linalg.norm(objective_gradient(X, Y, model.anchor.numpy(), model.lam, model.b.numpy())) < 1e-6


def test_bad_requests_are_typed_errors(small_data=None):
    data = ob.data.synthetic(60, 4, 2, seed=4)
    model = fit_stored_hessian(data, lam=0.1, seed=0)
    with pytest.raises(UnknownIdsError):
        model.remove([10_000])
    model.remove([data.ids[0]])
    with pytest.raises(AlreadyRemovedError):
        model.remove([data.ids[0]])
    with pytest.raises(ForgetAllError):
        model.remove(data.ids[1:])
    with pytest.raises(InvalidInputError, match="no removals yet"):
        plain = fit_certified(data, lam=0.1, seed=0)
        plain.remove([data.ids[0]])
        with_stored_hessian(plain)


def test_certified_newton_unlearner_takes_the_stored_path_and_leaves_the_input_alone():
    data = ob.data.synthetic(200, 5, 3, seed=5)
    model = fit_stored_hessian(data, lam=0.1, sigma=1.0, epsilon=2.0, seed=0)
    ids = data.sample_ids(4, seed=6)
    first = ob.unlearn(model, ids[:2], data, method="certified_newton")
    assert isinstance(first.model, StoredHessianLogisticRegression)
    assert model.removed_since == 0 and first.model.removed_since == 2
    second = ob.unlearn(first.model, ids[2:], data, method="certified_newton")
    assert second.model.removed_since == 4 and sorted(second.model.removed_ids) == sorted(ids)
    assert np.all(_true_residual(second.model) <= second.model.residual.numpy() + 1e-10)
