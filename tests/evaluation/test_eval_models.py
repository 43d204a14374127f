"""Metrics that run a model: logits, accuracy, relearn time and evaluate()."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import obliviate as ob
from obliviate.errors import InvalidInputError
from obliviate.evaluation import Metrics, accuracy, evaluate, predict_logits
from obliviate.evaluation.relearn import forget_relearn_steps, relearn_epochs, relearn_target


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


def test_forget_relearn_steps_counts_steps_and_leaves_model_and_rng_alone(models, train_set, class_request):
    _, oracle = models
    forget, _ = class_request.split(train_set)
    before = copy.deepcopy(oracle.state_dict())
    rng_before = torch.get_rng_state()
    options = {"target_accuracy": 0.8, "lr": 0.05, "batch_size": 16, "max_steps": 60, "seed": 0}
    steps = forget_relearn_steps(oracle, forget, **options)
    assert 1 <= steps <= 60
    assert forget_relearn_steps(oracle, forget, **options) == steps  # seeded
    # Reached at step `steps` and not before: a budget one short reports the sentinel.
    assert forget_relearn_steps(oracle, forget, **{**options, "max_steps": steps - 1}) == steps
    assert forget_relearn_steps(oracle, forget, **{**options, "max_steps": steps}) == steps
    assert all(torch.equal(before[k], v) for k, v in oracle.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_forget_relearn_steps_zero_when_reached_and_sentinel_when_never(identity_model):
    contradictory = ob.data.from_arrays(np.array([[1, 0], [1, 0]], dtype=np.float32), np.array([0, 1]))
    assert forget_relearn_steps(identity_model, contradictory, target_accuracy=0.5) == 0
    assert forget_relearn_steps(identity_model, contradictory, target_accuracy=1.0, max_steps=5) == 6
    with pytest.raises(InvalidInputError, match="target_accuracy"):
        forget_relearn_steps(identity_model, contradictory, target_accuracy=80)


def _one_input_model() -> nn.Module:
    model = nn.Linear(1, 2, bias=False)  # logits (w0 x, w1 x); at w = 0 the loss is ln 2
    with torch.no_grad():
        model.weight.zero_()
    return model


def test_relearn_epochs_by_hand():
    """SCRUB's readout_retrain on a case small enough to follow by hand.

    Every training example is x = 1 with label 0, so every draw is the same example. With
    d = w0 - w1 the loss is log(1 + e^-d) and one SGD step at lr 1 adds 2 sigma(-d) to d.
    Two steps per epoch (epoch_size 2, batch 1), from d = 0:
    epoch 1: d = 0 + 2(0.5) = 1, then 1 + 2 sigma(-1) = 1.53788; loss log(1 + e^-1.53788) = 0.19461
    epoch 2: d = 1.89159, then 2.15366; loss log(1 + e^-2.15366) = 0.10981
    """
    train = ob.data.from_arrays(np.ones((5, 1), dtype=np.float32), np.zeros(5, dtype=np.int64), num_classes=2)
    forget = train.subset(train.ids[:1])
    model = _one_input_model()
    run = {"lr": 1.0, "epoch_size": 2, "batch_size": 1, "weight_decay": 0.0}
    assert relearn_epochs(model, forget, train, target_loss=0.70, **run) == 0  # ln 2 = 0.693 already below
    assert relearn_epochs(model, forget, train, target_loss=0.20, **run) == 1  # 0.19461 after one epoch
    assert relearn_epochs(model, forget, train, target_loss=0.15, **run) == 2  # 0.19461 > 0.15 >= 0.10981
    assert relearn_epochs(model, forget, train, target_loss=0.10, max_epochs=2, **run) == 3  # never: budget + 1
    assert torch.equal(model.weight, torch.zeros(2, 1))  # a copy was trained
    # The target is the original's forget loss + 1e-5 (the notebook's thresh).
    assert relearn_target(model, forget) == pytest.approx(np.log(2) + 1e-5, abs=1e-7)


def test_relearn_epochs_draws_from_the_full_training_set():
    """Batches come from the training set, not the forget set: when the rest of the training data
    pulls the other way, the forget loss does not come back (forget-only relearning would refit it)."""
    X = np.ones((20, 1), dtype=np.float32)
    y = np.array([0] + [1] * 19)  # the forget example says 0, the other 19 say 1
    train = ob.data.from_arrays(X, y, num_classes=2)
    forget = train.subset(train.ids[:1])
    model = _one_input_model()
    run = {"lr": 0.5, "epoch_size": 20, "batch_size": 5, "weight_decay": 0.0, "max_epochs": 5}
    assert relearn_epochs(model, forget, train, target_loss=0.6, **run) == 6  # never reached
    assert relearn_epochs(model, forget, forget, target_loss=0.6, **run) == 1  # drawing from D_f alone it would


def test_relearn_epochs_penalty_pulls_back_to_the_start():
    """weight_decay / 2 * ||theta - theta_start||^2: with a huge pull the weights cannot leave the start."""
    train = ob.data.from_arrays(np.ones((5, 1), dtype=np.float32), np.zeros(5, dtype=np.int64), num_classes=2)
    forget = train.subset(train.ids[:1])
    run = {"lr": 0.01, "epoch_size": 2, "batch_size": 1, "max_epochs": 3, "target_loss": 0.68}
    # No penalty: d grows by 0.02 sigma(-d) a step: 0.0200 after one epoch (loss 0.6832), 0.0399 after two (0.6733).
    assert relearn_epochs(_one_input_model(), forget, train, weight_decay=0.0, **run) == 2
    # lr * wd = 1: every step first returns the weights to the start (w - lr * wd * (w - 0) = 0), then moves
    # them by the CE gradient alone, so d stays at 0.02 sigma(-d) < 0.01 and the loss above 0.688: never reached.
    assert relearn_epochs(_one_input_model(), forget, train, weight_decay=100.0, **run) == 4
    with pytest.raises(InvalidInputError, match="epoch_size"):
        relearn_epochs(_one_input_model(), forget, train, target_loss=0.1, epoch_size=0)


def _relearn_key(metrics) -> str:
    """evaluate() reports the forget-only readout as relearn_steps until suite.py moves to relearn_epochs."""
    return "relearn_epochs" if "relearn_epochs" in metrics else "relearn_steps"


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
    assert m[_relearn_key(m)] >= 1 and 0.0 <= m["loss_auc"] <= 1.0
    with pytest.raises(TypeError):
        m["avg_gap"] = 1.0  # read-only
    assert "avg_gap" in repr(m) and "points" in repr(m)


def test_evaluate_original_and_optional_keys(models, train_set, test_set, class_request):
    original, oracle = models
    m = evaluate(original, class_request, train_set, test_set, oracle=oracle, original=original, cost=ob.Cost(),
                 oracle_seconds=4.0)  # fmt: skip
    assert m[_relearn_key(m)] == 0  # already at its own forget loss and accuracy
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
