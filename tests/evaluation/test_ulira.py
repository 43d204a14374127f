"""U-LiRA: a hand-computed case, separable and identical distributions, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from obliviate.errors import InvalidInputError
from obliviate.evaluation import ulira, ulira_log_ratio


def test_log_ratio_by_hand():
    # unlearned shadows {0, 2}: mean 1, sample std sqrt(2); retrained shadows {-1, 1}: mean 0, std sqrt(2)
    # log Lambda(x) = -((x - 1)^2 - x^2) / (2 * 2) = (2x - 1) / 4
    shadow_u, shadow_r = np.array([[0.0], [2.0]]), np.array([[-1.0], [1.0]])
    targets = np.array([[0.9], [0.4], [3.0], [-2.0]])
    got = ulira_log_ratio(shadow_u, shadow_r, targets)[:, 0]
    np.testing.assert_allclose(got, [0.2, -0.05, 1.25, -1.25], rtol=1e-12)
    result = ulira(shadow_u, shadow_r, targets, [True, True, False, False])
    # called unlearned: 0.9 and 3.0; right on the first and wrong on the third
    assert result.accuracy == pytest.approx(0.5 * (1 / 2 + 1 / 2))
    # scores of unlearned targets {0.2, -0.05} against retrained {1.25, -1.25}: 2 of 4 pairs ordered
    assert result.auc == pytest.approx(0.5)


def test_unequal_variances_by_hand():
    shadow_u = np.array([[0.0], [2.0]])  # N(1, 2)
    shadow_r = np.array([[0.0], [0.0], [0.3]])  # mean 0.1, std sqrt(0.03)
    x = 0.5
    sd_r = math.sqrt(0.03)
    expected = (-0.5 * (x - 1) ** 2 / 2 - math.log(math.sqrt(2))) - (-0.5 * ((x - 0.1) / sd_r) ** 2 - math.log(sd_r))
    assert ulira_log_ratio(shadow_u, shadow_r, [[x]])[0, 0] == pytest.approx(expected, rel=1e-12)


def test_separable_distributions_are_told_apart():
    rng = np.random.default_rng(0)
    shadow_u, shadow_r = rng.normal(3.0, 0.5, (32, 20)), rng.normal(-1.0, 0.5, (32, 20))
    targets = np.concatenate([rng.normal(3.0, 0.5, (16, 20)), rng.normal(-1.0, 0.5, (16, 20))])
    result = ulira(shadow_u, shadow_r, targets, np.arange(32) < 16)
    assert result.accuracy > 0.99 and result.auc > 0.999
    assert result.per_example_accuracy.shape == (20,) and result.log_ratio.shape == (32, 20)


def test_identical_distributions_are_at_chance():
    rng = np.random.default_rng(1)
    shadow_u, shadow_r = rng.normal(0.0, 1.0, (64, 200)), rng.normal(0.0, 1.0, (64, 200))
    targets = rng.normal(0.0, 1.0, (64, 200))
    result = ulira(shadow_u, shadow_r, targets, np.arange(64) % 2 == 0)
    assert abs(result.accuracy - 0.5) < 0.03 and abs(result.auc - 0.5) < 0.03


def test_a_constant_sample_gets_a_finite_density():
    shadow_u, shadow_r = np.full((4, 1), 2.0), np.array([[0.0], [1.0], [-1.0], [0.5]])
    ratio = ulira_log_ratio(shadow_u, shadow_r, [[2.0], [0.0]])
    assert np.all(np.isfinite(ratio)) and ratio[0, 0] > 0 > ratio[1, 0]


def test_bad_input():
    ok = np.zeros((3, 2))
    with pytest.raises(InvalidInputError, match="at least 2"):
        ulira_log_ratio(np.zeros((1, 2)), ok, ok)
    with pytest.raises(InvalidInputError, match="same number of forget examples"):
        ulira_log_ratio(ok, ok, np.zeros((3, 5)))
    with pytest.raises(InvalidInputError, match="some retrained"):
        ulira(ok, ok + [[0.0, 1.0]], ok, [True, True, True])
    with pytest.raises(InvalidInputError, match="one flag per target"):
        ulira(ok, ok, ok, [True, False])
    with pytest.raises(InvalidInputError, match="booleans"):
        ulira(ok, ok, ok, [0.5, 1.0, 0.0])
