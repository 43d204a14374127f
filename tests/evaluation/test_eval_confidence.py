"""Per-example confidences and losses, checked on values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obliviate.errors import InvalidInputError
from obliviate.evaluation import logit_scaled_confidence, per_example_loss, true_class_probability

# Row 0: softmax (1/3, 1/3, 1/3), label 0. Row 1: exp = (3, 1, 1) -> (3/5, 1/5, 1/5), label 1.
LOGITS = np.array([[0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0]])
LABELS = np.array([0, 1])


def test_logit_scaled_confidence_by_hand():
    # log(1/3) - log(2/3) = -ln 2 ;  log(1/5) - log(4/5) = -ln 4
    np.testing.assert_allclose(logit_scaled_confidence(LOGITS, LABELS), [-math.log(2), -math.log(4)], rtol=1e-12)


def test_logit_scaled_confidence_is_shift_invariant_torch_in_numpy_out_and_input_untouched():
    logits = torch.tensor(LOGITS + 500.0, dtype=torch.float64)
    before = logits.clone()
    out = logit_scaled_confidence(logits, torch.tensor(LABELS))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, [-math.log(2), -math.log(4)], rtol=1e-9)
    assert torch.equal(logits, before)


def test_logit_scaled_confidence_floor_bounds_a_saturated_softmax():
    # p_wrong underflows to 0: the 1e-45 floor gives log(1) - log(1e-45) = 45 ln 10.
    out = logit_scaled_confidence(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert out[0] == pytest.approx(45 * math.log(10), rel=1e-12)
    assert out[1] == pytest.approx(-45 * math.log(10), rel=1e-12)


def test_true_class_probability_and_loss_by_hand():
    np.testing.assert_allclose(true_class_probability(LOGITS, LABELS), [1 / 3, 1 / 5], rtol=1e-6)
    np.testing.assert_allclose(per_example_loss(LOGITS, LABELS), [math.log(3), math.log(5)], rtol=1e-6)


@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (np.zeros((2, 3)), np.array([0]), r"shape \(2,\)"),
        (np.zeros((2, 3)), np.array([0, 3]), r"\[0, 3\)"),
        (np.zeros(3), np.array([0]), "2 axis"),
        (np.array([[np.nan, 0.0]]), np.array([0]), "NaN"),
        (np.zeros((2, 3)), np.array([0.5, 1.0]), "integer"),
    ],
)
def test_bad_inputs_name_the_problem(logits, labels, match):
    with pytest.raises(InvalidInputError, match=match):
        logit_scaled_confidence(logits, labels)
