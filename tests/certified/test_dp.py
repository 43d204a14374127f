"""DP-SGD training (Recipe(privacy=DP(...))) and the dp_sgd group-privacy unlearner."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch

import obliviate as ob
from obliviate.certified.dp import DP, PrivateModelError, privacy_of
from obliviate.certified.dp_unlearner import group_privacy
from obliviate.errors import InvalidInputError, UnsupportedModelError
from obliviate.storage import read_metadata, save_model

EPS, DELTA = 1.0, 1e-4


@pytest.fixture(scope="session")
def dp_recipe():
    return ob.Recipe(model="mlp", epochs=2, lr=0.5, seed=0, model_options={"hidden": (32,)}, privacy=DP(EPS, DELTA))


@pytest.fixture(scope="session")
def dp_model(dp_recipe, small_train):
    """A DP-SGD model on 400 digits: shared, do not modify."""
    return ob.train(dp_recipe, small_train)


# ------------------------------------------------------------------ the recipe


def test_fingerprint_unchanged_without_privacy_and_changed_with_it(dp_recipe):
    plain = ob.Recipe(model="mlp", epochs=2, lr=0.1, seed=0, model_options={"hidden": (32,)})
    assert "privacy" not in plain.to_dict()
    # fingerprints computed before the privacy field existed (commit 169d0df): cached oracles stay valid
    assert ob.Recipe().fingerprint == "8caa59832f642515770288dd4bfcb39f41689be23f59d1713307371d38d7bf6e"
    assert plain.fingerprint == "5d9cb43b27d620aa67e67b987a6a9f3a2cf2a9d57cc8e4abe7bb7646afd755ba"
    assert replace(dp_recipe, privacy=None).fingerprint != dp_recipe.fingerprint
    other = replace(dp_recipe, privacy=DP(2 * EPS, DELTA))
    assert other.fingerprint not in {plain.fingerprint, dp_recipe.fingerprint}
    assert replace(dp_recipe, privacy=DP(EPS, DELTA, accountant="rdp")).fingerprint != dp_recipe.fingerprint
    assert len({plain, dp_recipe, other, replace(other, privacy=DP(2 * EPS, DELTA))}) == 3  # frozen and hashable


def test_recipe_round_trips_privacy_through_its_dict(dp_recipe):
    d = dp_recipe.to_dict()
    assert d["privacy"] == {"epsilon": EPS, "delta": DELTA, "max_grad_norm": 1.0, "accountant": "prv"}
    again = ob.Recipe.from_dict(d)
    assert again == dp_recipe and isinstance(again.privacy, DP)
    assert again.fingerprint == dp_recipe.fingerprint


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.0},
        {"epsilon": -1.0},
        {"epsilon": math.inf},
        {"epsilon": 1.0, "delta": 0.0},
        {"epsilon": 1.0, "delta": 1.0},
        {"epsilon": 1.0, "delta": -1e-5},
        {"epsilon": 1.0, "max_grad_norm": 0.0},
        {"epsilon": 1.0, "accountant": "moments"},
        {"epsilon": "1"},
    ],
)
def test_bad_privacy_settings_raise_typed_errors(kwargs):
    with pytest.raises(InvalidInputError):
        DP(**kwargs)
    with pytest.raises(InvalidInputError):  # the recipe's dict form is checked the same way
        ob.Recipe(privacy=kwargs)


def test_privacy_of_a_wrong_type_or_unknown_field_is_rejected():
    with pytest.raises(InvalidInputError, match="privacy must be"):
        ob.Recipe(privacy=1.0)
    with pytest.raises(InvalidInputError, match="unknown DP fields"):
        ob.Recipe(privacy={"epsilon": 1.0, "sigma": 2.0})


def test_delta_not_below_one_over_n_is_refused(small_train):
    recipe = ob.Recipe(epochs=1, privacy=DP(1.0, 1.0 / len(small_train)))
    with pytest.raises(InvalidInputError, match="1/n"):
        ob.train(recipe, small_train)


# ------------------------------------------------------------------ training


def test_dp_training_spends_at_most_the_target_and_close_to_it(dp_model, dp_recipe, small_train, test_set):
    record = privacy_of(dp_model)
    assert record is not None
    assert record.epsilon <= EPS and record.epsilon >= EPS - 0.05  # binary search to 0.01 of the target
    assert record.delta == DELTA and record.accountant == "prv" and record.target_epsilon == EPS
    batches = math.ceil(len(small_train) / dp_recipe.batch_size)
    assert record.sample_rate == pytest.approx(1 / batches)
    assert record.steps == dp_recipe.epochs * batches and record.n == len(small_train)
    assert record.noise_multiplier > 0.5
    # a plain module, free of Opacus's wrapper, hooks and per-sample attributes
    assert type(dp_model) is ob.models.MLP
    assert not any(m._forward_hooks or m._backward_hooks for m in dp_model.modules())
    assert not any(hasattr(p, "grad_sample") or p.grad is not None for p in dp_model.parameters())
    X, y = test_set.tensors
    with torch.no_grad():
        accuracy = (dp_model(X).argmax(1) == y).float().mean().item()
    assert accuracy > 0.3  # learns something through the noise (chance is 0.1)


def test_dp_training_is_deterministic_by_seed(dp_model, dp_recipe, small_train, same_weights):
    assert same_weights(ob.train(dp_recipe, small_train), dp_model)
    assert not same_weights(ob.train(dp_recipe.with_seed(1), small_train), dp_model)


def test_noise_is_added(dp_model, dp_recipe, small_train, same_weights):
    """The same recipe without privacy (plain SGD, no clipping or noise) gives other weights."""
    plain = replace(dp_recipe, privacy=None)
    assert not same_weights(ob.train(plain, small_train), dp_model)


def test_cnn_trains_privately_and_batchnorm_is_refused(small_train):
    cnn = ob.train(ob.Recipe(model="cnn", epochs=1, model_options={"width": 8}, privacy=DP(EPS, DELTA)), small_train)
    assert privacy_of(cnn).epsilon <= EPS
    with pytest.raises(PrivateModelError, match="GroupNorm") as info:
        ob.train(ob.Recipe(model="resnet18", epochs=1, privacy=DP(EPS, DELTA)), small_train)
    assert isinstance(info.value, UnsupportedModelError) and "BatchNorm" in str(info.value)


def test_the_record_is_written_into_the_checkpoint(dp_model, tmp_path):
    import json

    save_model(dp_model, tmp_path / "dp.safetensors")
    spec = json.loads(read_metadata(tmp_path / "dp.safetensors")["obliviate.spec"])
    assert spec["privacy"] == privacy_of(dp_model).to_dict()
    assert spec["recipe"]["privacy"]["epsilon"] == EPS


# ------------------------------------------------------------------ the unlearner


def test_group_privacy_bound():
    assert group_privacy(1.0, 1e-5, 1) == (1.0, 1e-5)
    eps, delta = group_privacy(0.5, 1e-6, 4)
    assert eps == 2.0 and delta == pytest.approx(4 * math.exp(1.5) * 1e-6)
    assert group_privacy(1.0, 1e-5, 10_000) == (10_000.0, 1.0)  # vacuous, not an overflow
    with pytest.raises(InvalidInputError):
        group_privacy(1.0, 1e-5, -1)


def test_dp_sgd_keeps_the_weights_and_certifies_group_privacy(dp_model, small_train, same_weights):
    before = copy.deepcopy(dp_model)
    record = privacy_of(dp_model)
    first = ob.unlearn(dp_model, small_train.ids[:3], small_train, method="dp_sgd")
    assert same_weights(first.model, dp_model) and same_weights(dp_model, before)
    assert first.guarantee.kind == "certified"
    assert first.guarantee.epsilon == pytest.approx(3 * record.epsilon)
    assert first.guarantee.delta == pytest.approx(3 * math.exp(2 * record.epsilon) * record.delta)
    assert first.cost.gradient_steps == 0
    assert privacy_of(first.model).forgotten_ids == tuple(int(i) for i in small_train.ids[:3])
    assert privacy_of(dp_model).forgotten_ids == ()  # the original is untouched
    # a second request is certified for the whole group forgotten so far
    rest = small_train.without(small_train.ids[:3])
    second = ob.unlearn(first.model, small_train.ids[3:5], rest, method="dp_sgd")
    assert second.guarantee.epsilon == pytest.approx(5 * record.epsilon)


def test_dp_sgd_refuses_models_without_a_record_ids_forgotten_twice_and_other_data(
    dp_model, trained_mlp, small_train, train_set
):
    with pytest.raises(UnsupportedModelError, match="DP-SGD"):
        ob.unlearn(trained_mlp, train_set.ids[:3], train_set, method="dp_sgd")
    first = ob.unlearn(dp_model, small_train.ids[:3], small_train, method="dp_sgd")
    with pytest.raises(InvalidInputError, match="already forgotten"):
        ob.unlearn(first.model, small_train.ids[2:4], small_train, method="dp_sgd")
    with pytest.raises(InvalidInputError, match="DP-trained on 400"):
        ob.unlearn(dp_model, train_set.ids[:3], train_set, method="dp_sgd")
