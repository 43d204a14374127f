"""The NeurIPS 2023 challenge metric: identical to a literal transcription of the reference code
on random inputs, and each special rule (inf, discard, peaky cap, buckets) on its own case."""

from __future__ import annotations

import numpy as np
import pytest
from nips_reference import reference_epsilons, reference_forget_score

from obliviate.errors import InvalidInputError
from obliviate.evaluation import nips_epsilons, nips_final_score, nips_forget_score, nips_points
from obliviate.evaluation.nips import _epsilon_table, _single_threshold_counts


def _random_confs(rng, kind, n, m):
    u = rng.normal(rng.normal(0, 2), rng.uniform(0.05, 3), size=(n, m))
    r = rng.normal(rng.normal(0, 2), rng.uniform(0.05, 3), size=(n, m))
    if kind == "grid":  # values on and near threshold grid points, many ties
        u, r = np.round(u * 4) / 4, np.round(r * 4) / 4
    elif kind == "integers":
        u, r = rng.integers(-3, 3, size=(n, m)).astype(float), rng.integers(-3, 3, size=(n, m)).astype(float)
    elif kind == "same":
        u = r.copy()
    return u, r


@pytest.mark.parametrize("kind", ["normal", "grid", "integers", "same"])
def test_fast_epsilons_equal_the_reference_transcription(kind):
    rng = np.random.default_rng(["normal", "grid", "integers", "same"].index(kind))
    for _ in range(2):
        n, m = int(rng.integers(2, 17)), int(rng.integers(1, 4))
        u, r = _random_confs(rng, kind, n, m)
        np.testing.assert_array_equal(nips_epsilons(u, r), reference_epsilons(u, r))


@pytest.mark.parametrize("n", [37, 100])
def test_fast_epsilons_equal_the_reference_at_larger_model_counts(n):
    # the float32 rate table is where fast and reference could part: check N off a power of two
    rng = np.random.default_rng(n)
    u, r = rng.normal(0.0, 1.0, size=(n, 2)), rng.normal(0.6, 1.4, size=(n, 2))
    np.testing.assert_array_equal(nips_epsilons(u, r), reference_epsilons(u, r))


def test_forget_score_equals_the_reference_transcription():
    rng = np.random.default_rng(7)
    u = rng.normal(0.0, 1.0, size=(10, 4))
    r = rng.normal(0.8, 1.3, size=(10, 4))
    assert nips_forget_score(u, r) == reference_forget_score(u, r)


def test_identical_distributions_give_zero():
    r = np.random.default_rng(0).normal(size=(16, 5))
    np.testing.assert_array_equal(nips_epsilons(r.copy(), r), np.zeros(5))
    assert nips_forget_score(r.copy(), r) == 1.0


def test_perfect_separation_is_infinite_and_capped_at_50():
    n = 8
    unlearned = np.linspace(10.0, 11.0, n)[:, None]  # same ranges: not the peaky rule
    retrained = np.linspace(0.0, 1.0, n)[:, None]
    assert nips_epsilons(unlearned, retrained)[0] == 50.0
    assert nips_forget_score(unlearned, retrained) == 0.0  # 50 is beyond the last bucket


def test_an_attack_with_exactly_one_error_rate_zero_is_discarded():
    table = _epsilon_table(4, 1e-5)
    assert table[0, 0] == np.inf  # FPR = FNR = 0
    assert np.all(table[0, 1:] < 0) and np.all(table[1:, 0] < 0)  # discarded marks
    assert table[1, 1] == pytest.approx(np.log((1 - 1e-5 - 0.25) / 0.25), rel=1e-6)
    # Two models each: every attack either has one rate 0 (e.g. c >= 2.5 catches one unlearned
    # model, no retrained one: FPR 0, FNR 0.5, which would give log(2) if kept) or no evidence.
    unlearned, retrained = np.array([[1.0], [3.0]]), np.array([[0.0], [2.0]])
    assert nips_epsilons(unlearned, retrained)[0] == 0.0


def test_range_ratio_below_one_percent_gets_the_cap():
    def samples(spread):  # a narrow sample, and a wide one that holds the same values plus 0 and 1
        narrow = 0.5 + spread * np.linspace(0.0, 1.0, 10)
        wide = narrow.copy()
        wide[[0, -1]] = 0.0, 1.0
        return narrow[:, None], wide[:, None]

    assert nips_epsilons(*samples(0.0099))[0] == 50.0  # ratio 0.0099
    assert nips_epsilons(*samples(0.0101))[0] < 3.0  # ratio 0.0101: the attacks decide, and they overlap


def test_bucket_boundaries():
    eps = [0.0, 0.49, 0.5, 0.99, 1.0, 6.49, 6.5, 6.99, 7.0, 50.0]
    # N = 512: ceil(ln 511) = 7, buckets k = 0..13 worth 2^-k, nothing from 7 on.
    expected = [1, 1, 0.5, 0.5, 0.25, 2.0**-12, 2.0**-13, 2.0**-13, 0, 0]
    np.testing.assert_array_equal(nips_points(eps, 512), expected)
    np.testing.assert_array_equal(nips_points([0.0, 0.5, 0.99, 1.0], 3), [1, 0.5, 0.5, 0])  # ceil(ln 2) = 1
    np.testing.assert_array_equal(nips_points([0.0], 2), [0])  # ceil(ln 1) = 0: no bucket at all


def test_final_score_arithmetic():
    # 0.5 * (0.95 / 1.0) * (0.8 / 0.8)
    assert nips_final_score(0.5, [0.9, 1.0], [1.0, 1.0], [0.8], [0.9, 0.7]) == pytest.approx(0.475)
    with pytest.raises(InvalidInputError, match="ra_retrained has mean 0"):
        nips_final_score(0.5, [0.9], [0.0], [0.8], [0.8])
    with pytest.raises(InvalidInputError, match="forget_score"):
        nips_final_score(1.5, [0.9], [0.9], [0.8], [0.8])
    with pytest.raises(InvalidInputError, match="divide percentages by 100"):
        nips_final_score(0.5, [90.0], [0.9], [0.8], [0.8])


def test_bad_inputs_name_the_shapes():
    with pytest.raises(InvalidInputError, match=r"\(4, 3\).*\(4, 2\)"):
        nips_epsilons(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(InvalidInputError, match="at least 2"):
        nips_epsilons(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(InvalidInputError, match="delta"):
        nips_epsilons(np.zeros((4, 3)), np.zeros((4, 3)), delta=0.0)


def test_a_window_attack_finds_a_sample_enclosed_by_the_other():
    # The unlearned sample sits inside the retrained one's range: no single threshold c >= t
    # separates them without one error rate 0 (discarded), but the window [-0.x, 0.3+] catches
    # every unlearned model and no retrained one: FPR = FNR = 0, inf, capped at 50.
    unlearned = np.array([[0.0], [0.1], [0.2], [0.3]])  # range 0.3 / 10 = 0.03: not the peaky rule
    retrained = np.array([[-5.0], [-4.0], [4.0], [5.0]])
    assert nips_epsilons(unlearned, retrained)[0] == 50.0
    fp, fn = _single_threshold_counts(unlearned[:, 0], retrained[:, 0])
    assert _epsilon_table(4, 1e-5)[fp, fn].max() < 1.0  # the single thresholds alone find almost nothing


def test_bucket_edges_follow_ceil_ln_n_minus_1():
    # N = 10: ceil(ln 9) = 3, buckets k = 0..5; the last one, [2.5, 3), is worth 2^-5
    np.testing.assert_array_equal(nips_points([2.49, 2.5, 2.99, 3.0], 10), [2.0**-4, 2.0**-5, 2.0**-5, 0])
    # N = 21: ceil(ln 20) = 3 as well; N = 22: ceil(ln 21) = 4 opens buckets 6 and 7
    np.testing.assert_array_equal(nips_points([3.0], 21), [0])
    np.testing.assert_array_equal(nips_points([3.0, 3.99], 22), [2.0**-6, 2.0**-7])


def test_forget_and_final_score_from_confidences():
    rng = np.random.default_rng(3)
    n = 10
    same = rng.normal(size=(n, 1))  # identical samples: epsilon 0, 1 point
    apart_u, apart_r = np.linspace(10.0, 11.0, n)[:, None], np.linspace(0.0, 1.0, n)[:, None]  # 50: 0 points
    unlearned, retrained = np.hstack([same, apart_u]), np.hstack([same, apart_r])
    np.testing.assert_array_equal(nips_epsilons(unlearned, retrained), [0.0, 50.0])
    forget = nips_forget_score(unlearned, retrained)
    assert forget == 0.5
    ra_u, ra_r, ta_u, ta_r = np.full(n, 0.9), np.full(n, 1.0), np.full(n, 0.6), np.full(n, 0.8)
    assert nips_final_score(forget, ra_u, ra_r, ta_u, ta_r) == pytest.approx(0.5 * 0.9 * 0.75)
    # accuracy above the retrained models' raises the score above F (the ratio is not capped)
    assert nips_final_score(forget, ra_r, ra_u, ta_r, ta_u) == pytest.approx(0.5 / 0.9 / 0.75)
