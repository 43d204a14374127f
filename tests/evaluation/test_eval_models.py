"""Metrics that run a model: logits, accuracy, relearn time and evaluate()."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import obliviate as ob
from obliviate.errors import InvalidInputError
from obliviate.evaluation import Metrics, accuracy, evaluate, predict_logits, relearn_time


@pytest.fixture(scope="module")
def identity_model():
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    return model


@pytest.fixture(scope="module")
def points():
    return ob.data.from_arrays(np.array([[1, 0], [0, 1], [2, 1], [0, 3]], dtype=np.float32), np.array([0, 1, 1, 1]))


def test_predict_logits_batches_agree_and_mode_is_restored(identity_model, points):
    identity_model.train()
    full = predict_logits(identity_model, points)
    assert identity_model.training
    np.testing.assert_array_equal(full, points.X)
    np.testing.assert_array_equal(predict_logits(identity_model, points, batch_size=1), full)
    assert accuracy(identity_model, points) == 0.75  # row [2, 1] is predicted 0, labelled 1


def test_predict_logits_names_the_output_shape(points):
    with pytest.raises(InvalidInputError, match=r"\(4, 3\).*\(batch, 2\)"):
        predict_logits(nn.Linear(2, 3), points)


@pytest.fixture(scope="module")
def models(tiny_recipe, train_set, class_request):
    original = ob.train(tiny_recipe, train_set)
    oracle = ob.retrain(tiny_recipe, train_set, class_request, cache=False)
    return original, oracle


def test_relearn_time_counts_steps_and_leaves_model_and_rng_alone(models, train_set, class_request):
    _, oracle = models
    forget, _ = class_request.split(train_set)
    before = copy.deepcopy(oracle.state_dict())
    rng_before = torch.get_rng_state()
    options = {"target_accuracy": 0.8, "lr": 0.05, "batch_size": 16, "max_steps": 60, "seed": 0}
    steps = relearn_time(oracle, forget, **options)
    assert 1 <= steps <= 60
    assert relearn_time(oracle, forget, **options) == steps  # seeded
    # Reached at step `steps` and not before: a budget one short reports the sentinel.
    assert relearn_time(oracle, forget, **{**options, "max_steps": steps - 1}) == steps
    assert relearn_time(oracle, forget, **{**options, "max_steps": steps}) == steps
    assert all(torch.equal(before[k], v) for k, v in oracle.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_relearn_time_zero_when_reached_and_sentinel_when_never(identity_model):
    contradictory = ob.data.from_arrays(np.array([[1, 0], [1, 0]], dtype=np.float32), np.array([0, 1]))
    assert relearn_time(identity_model, contradictory, target_accuracy=0.5) == 0
    assert relearn_time(identity_model, contradictory, target_accuracy=1.0, max_steps=5) == 6
    with pytest.raises(InvalidInputError, match="target_accuracy"):
        relearn_time(identity_model, contradictory, target_accuracy=80)


def test_evaluate_against_the_oracle(models, train_set, test_set, class_request):
    original, oracle = models
    m = evaluate(
        oracle, class_request, train_set, test_set, oracle=oracle, original=original,
        cost=ob.Cost(seconds=2.0), oracle_seconds=4.0,
    )  # fmt: skip
    assert isinstance(m, Metrics)
    for key in ("retain_accuracy", "test_accuracy", "forget_accuracy", "mia_efficacy"):
        assert 0.0 <= m[key] <= 1.0 and m[f"oracle_{key}"] == m[key]
    assert m["avg_gap"] == 0.0 and m["seconds"] == 2.0 and m["efficiency"] == 2.0
    assert m["forget_accuracy"] < 0.2 and m["mia_efficacy"] > 0.5  # the retrained model never saw class 3
    assert m["relearn_steps"] >= 1 and 0.0 <= m["loss_auc"] <= 1.0
    with pytest.raises(TypeError):
        m["avg_gap"] = 1.0  # read-only
    assert "avg_gap" in repr(m) and "points" in repr(m)


def test_evaluate_original_and_optional_keys(models, train_set, test_set, class_request):
    original, oracle = models
    m = evaluate(original, class_request, train_set, test_set, oracle=oracle, original=original, cost=ob.Cost(),
                 oracle_seconds=4.0)  # fmt: skip
    assert m["relearn_steps"] == 0  # already at its own forget accuracy
    assert m["avg_gap"] > 10.0  # still knows class 3
    assert "efficiency" not in m and m["seconds"] == 0.0  # no work, no speed-up
    bare = evaluate(original, list(class_request.ids), train_set, test_set)
    assert set(bare) == {"retain_accuracy", "test_accuracy", "forget_accuracy", "mia_efficacy", "loss_auc"}


def test_evaluate_rejects_mismatched_or_overlapping_data(models, train_set, test_set, class_request):
    original, _ = models
    other = ob.data.from_arrays(np.zeros((5, 3), dtype=np.float32), np.arange(5), num_classes=10, ids=np.arange(10**6, 10**6 + 5))
    with pytest.raises(InvalidInputError, match=r"\(3,\).*\(64,\)"):
        evaluate(original, class_request, train_set, other)
    with pytest.raises(InvalidInputError, match="both data and test"):
        evaluate(original, class_request, train_set, train_set)
    with pytest.raises(InvalidInputError, match="oracle must be a torch.nn.Module"):
        evaluate(original, class_request, train_set, test_set, oracle="retrain")
