"""Certified models as recipes: ob.train, the oracle, the retrain method and the bench treat them
like every other model, and a DP model's privacy record survives a save and load."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import obliviate as ob
from obliviate.bench import get_suite, run_suite
from obliviate.certified.dp import privacy_of
from obliviate.certified.logistic import CertifiedLogisticRegression
from obliviate.errors import InvalidInputError
from obliviate.models import build_model

OPTIONS = {"lam": 0.1, "sigma": 1.0, "epsilon": 1.0, "delta": 1e-4}


@pytest.fixture(scope="module")
def recipe():
    return ob.Recipe(model="certified_logreg", model_options=OPTIONS, seed=3)


def test_train_dispatches_to_the_certified_solver(recipe, small_train):
    model = ob.train(recipe, small_train)
    assert isinstance(model, CertifiedLogisticRegression)
    again = ob.train(recipe, small_train)
    assert torch.equal(model.weight, again.weight)  # the solver is seeded by the recipe


def test_oracle_and_retrain_method_use_the_same_solver(recipe, small_train):
    request = ob.ForgetRequest(ids=small_train.ids[:20])
    oracle = ob.retrain(recipe, small_train, request)  # not cached: solver state is not a plain state dict
    direct = ob.train(recipe, small_train.without(small_train.ids[:20]))
    assert torch.equal(oracle.weight, direct.weight)
    original = ob.train(recipe, small_train)
    via_method = ob.unlearn(original, request, small_train, method="retrain")
    assert torch.equal(via_method.model.weight, direct.weight)
    removed = ob.unlearn(original, request, small_train, method="certified_newton")
    assert removed.guarantee.kind == "certified"
    # one Newton step lands on the same noisy minimiser the solver finds on the remaining data
    torch.testing.assert_close(removed.model.weight, direct.weight, atol=1e-4, rtol=0)


def test_solver_models_are_not_built_empty_and_bad_options_are_named(small_train):
    with pytest.raises(InvalidInputError, match="certified solver"):
        build_model("certified_logreg", (64,), 10)
    with pytest.raises(InvalidInputError, match="model_options"):
        ob.train(ob.Recipe(model="certified_logreg", model_options={"bogus": 1}), small_train)


def test_certified_suite_runs_in_the_bench():
    suite = get_suite("certified")
    results = run_suite(replace(suite, seeds=2), relearn=False, show_progress=False)
    gaps = [r["value"] for r in results["rows"] if r["method"] == "certified_newton" and r["metric"] == "avg_gap"]
    assert len(gaps) == 4 and max(gaps) < 5.0  # close to the oracle in both scenarios


def test_dp_record_survives_save_and_load(small_train, tmp_path):
    recipe = ob.Recipe(model="mlp", model_options={"hidden": (16,)}, epochs=1, lr=0.5, momentum=0.0,
                       weight_decay=0.0, privacy={"epsilon": 4.0, "delta": 1e-3})
    model = ob.train(recipe, small_train)
    ob.save_model(model, tmp_path / "dp.safetensors")
    loaded = ob.load_model(tmp_path / "dp.safetensors")
    assert privacy_of(loaded) == privacy_of(model)  # the spent epsilon, noise and accountant, all of it


def test_certified_removal_keeps_no_trace_of_removed_rows_but_their_ids(recipe, small_train):
    original = ob.train(recipe, small_train)
    gone = small_train.ids[:5]
    removed = ob.unlearn(original, gone, small_train, method="certified_newton").model
    rows = torch.from_numpy(__import__("numpy").isin(removed.train_ids.numpy(), gone))
    assert int(rows.sum()) == 5
    assert torch.count_nonzero(removed.train_X[rows]) == 0 and bool((removed.train_y[rows] == -1).all())
    assert torch.count_nonzero(original.train_X[rows]) > 0  # the input model is untouched


def test_solver_models_are_not_written_to_files(recipe, small_train, tmp_path):
    from obliviate.errors import InvalidInputError as Invalid

    with pytest.raises(Invalid, match="secret noise"):
        ob.save_model(ob.train(recipe, small_train), tmp_path / "c.safetensors")
    assert not list(tmp_path.iterdir())


def test_secure_noise_is_not_reproducible_from_the_seed(small_train):
    from obliviate.certified.descent_to_delete import train_descent_to_delete
    from obliviate.certified.logistic import fit_certified

    a, b = (fit_certified(small_train, seed=0, secure=True) for _ in range(2))
    assert not torch.equal(a.b, b.b)
    assert torch.equal(fit_certified(small_train, seed=0).b, fit_certified(small_train, seed=0).b)
    d1, d2 = (train_descent_to_delete(small_train, iterations=20, seed=0, secure=True) for _ in range(2))
    assert torch.equal(d1.secret, d2.secret) and not torch.equal(d1.weight, d2.weight)  # same fit, fresh noise


def test_stored_hessian_recipe_removes_like_guo_et_al(small_train):
    """``certified_logreg_stored`` is the same certified fit keeping its Hessian; its first removal is Guo et al.'s."""
    from obliviate.certified.stored_hessian import StoredHessianLogisticRegression

    request = ob.ForgetRequest(ids=small_train.ids[:5])
    plain = ob.train(ob.Recipe(model="certified_logreg", model_options=OPTIONS, seed=3), small_train)
    stored = ob.train(ob.Recipe(model="certified_logreg_stored", model_options=OPTIONS, seed=3), small_train)
    assert isinstance(stored, StoredHessianLogisticRegression)
    assert torch.allclose(stored.weight, plain.weight)
    a = ob.unlearn(plain, request, small_train, method="certified_newton").model
    b = ob.unlearn(stored, request, small_train, method="certified_newton").model
    assert not torch.allclose(b.weight, stored.weight)  # the removal moved the weights
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


def test_stored_hessian_state_dict_holds_no_removal_statistics(small_train):
    """The running sums of a removal (the deleted rows' gradients and outer products) never leave in a state_dict."""
    stored = ob.train(ob.Recipe(model="certified_logreg_stored", model_options=OPTIONS, seed=3), small_train)
    out = ob.unlearn(stored, ob.ForgetRequest(ids=small_train.ids[:3]), small_train, method="certified_newton").model
    assert float(out.delta_sum.abs().sum()) > 0  # kept in memory for the next removal
    assert not {"delta_sum", "hess_data", "gram", "anchor"} & set(out.state_dict())
