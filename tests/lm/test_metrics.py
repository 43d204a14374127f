"""TOFU, MIA, privleak and fluency metrics against hand-computed values; the model readers on a tiny GPT."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from scipy import stats

from obliviate.errors import InvalidInputError
from obliviate.evaluation import lm as m


def test_answer_probability_is_exp_of_mean_token_nll():
    got = m.answer_probability([2.0, 3.0], [4, 1])
    assert np.allclose(got, [math.exp(-0.5), math.exp(-3.0)])


def test_normalised_probability_against_the_perturbed_answers():
    got = m.normalised_answer_probability([0.5], [[0.25, 0.25]])
    assert got[0] == pytest.approx(0.5 / (0.5 + 0.5 + 1e-10))


def test_truth_ratio_uses_geometric_mean_of_perturbed_probabilities():
    # paraphrase: NLL 2 over 2 tokens -> p = e^-1; perturbed avg NLLs 1 and 3 -> exp(-mean) = e^-2
    tr = m.truth_ratio([2.0], [[2.0, 6.0]], [2], [[2, 2]])
    assert tr[0] == pytest.approx(math.exp(-2) / (math.exp(-1) + 1e-10))
    assert m.truth_ratio_closer_to_one([0.5, 2.0]) == pytest.approx(0.5, rel=1e-6)
    assert m.truth_ratio_true_better([0.25, 1.5]) == pytest.approx((0.75 + 0.0) / 2)


def test_forget_quality_is_the_ks_pvalue():
    a, b = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.35, 0.5, 0.6, 0.7, 0.8])
    assert m.forget_quality(a, b) == pytest.approx(stats.ks_2samp(a, b).pvalue)
    assert m.forget_quality(a, a) == pytest.approx(1.0)


def test_model_utility_is_the_harmonic_mean_and_zero_if_any_is_zero():
    assert m.model_utility([0.5, 0.25]) == pytest.approx(2 / (1 / 0.5 + 1 / 0.25))
    assert m.model_utility([0.5, 0.0, 0.9]) == 0.0
    with pytest.raises(InvalidInputError):
        m.model_utility([0.5, -0.1])


def test_rouge_l_recall_with_stemming():
    got = m.rouge_l_recall(["the cats sat", ""], ["the cat sat on the mat", "anything"])
    assert got[0] == pytest.approx(3 / 6)  # "cats" stems to "cat": LCS the-cat-sat
    assert got[1] == 0.0


def test_mia_scores_by_hand():
    assert np.allclose(m.loss_score([6.0], [3]), [2.0])
    text = "Alice was born in Paris."
    assert m.zlib_score([6.0], [3], [text])[0] == pytest.approx(2.0 / len(zlib.compress(text.encode())))
    lp = np.array([-1.0, -5.0, -0.5, -3.0, -2.0])  # k=0.4 -> 2 lowest: -5, -3
    assert m.min_k([lp])[0] == pytest.approx(4.0)
    mu, sigma = np.full(5, -1.0), np.full(5, 2.0)  # z = (lp + 1) / 2 -> lowest two: -2, -1
    assert m.min_k_plus_plus([lp], [mu], [sigma])[0] == pytest.approx(1.5)
    assert m.min_k([np.array([-7.0])], k=0.4)[0] == pytest.approx(7.0)  # at least one token


def test_mia_auc_and_privleak():
    # holdout scores above every forget score: perfectly separable -> AUC 1
    assert m.mia_auc([0.1, 0.2], [0.5, 0.6]) == 1.0
    # pairs (holdout > forget): 0.3>0.1, 0.5>0.1, 0.5=0.5 counts 1/2, 0.3<0.5 -> 2.5 of 4
    assert m.mia_auc([0.1, 0.5], [0.3, 0.5]) == pytest.approx(0.625)
    # MUSE's orientation, A = 1 - AUC: (0.25 - 0.5) / 0.5 * 100 = -50 (under-unlearned is negative)
    assert m.privleak(0.75, 0.5) == pytest.approx(-50.0)
    assert m.privleak(0.5, 0.5) == 0.0
    assert m.privleak(1.0, 0.5) == pytest.approx(-100.0)  # an un-unlearned target: the forget set fully recognised
    assert m.privleak(0.4, 0.6) == pytest.approx((0.6 - 0.4) / 0.4 * 100)  # over-unlearned: +50
    assert np.isnan(m.privleak(0.7, 1.0))
    with pytest.raises(InvalidInputError):
        m.privleak(1.2, 0.5)


def test_perplexity_and_degenerate_answers():
    assert m.perplexity([2.0, 4.0], [2, 4]) == pytest.approx(math.exp(1.0))
    assert m.is_degenerate("born on on on June")
    assert m.is_degenerate("")
    assert m.is_degenerate("a b a b a b a b")  # 2 distinct of 8
    assert not m.is_degenerate("Alice was born in Paris, France.")
    assert m.degenerate_share(["on on on", "Alice was born in Paris.", "", "fine answer"]) == 0.5


def test_bad_shapes_raise():
    with pytest.raises(InvalidInputError):
        m.truth_ratio([1.0, 2.0], [[1.0]], [1, 1], [[1]])
    with pytest.raises(InvalidInputError):
        m.min_k([np.array([])])
    with pytest.raises(InvalidInputError):
        m.min_k([np.array([-1.0])], k=0)


def test_readers_on_a_trained_tiny_gpt(trained_tiny_lm, small_authors):
    """The target model puts more probability on trained answers than on the holdout authors',
    and the MIA scores tell members from non-members."""
    train, holdout = small_authors.train, small_authors.holdout
    nll_t, n_t = m.answer_nll_of(trained_tiny_lm, train.questions, train.answers)
    nll_h, n_h = m.answer_nll_of(trained_tiny_lm, holdout.questions, holdout.answers)
    assert m.answer_probability(nll_t, n_t).mean() > 2 * m.answer_probability(nll_h, n_h).mean()
    assert m.mia_auc(m.loss_score(nll_t, n_t), m.loss_score(nll_h, n_h)) > 0.8
    lps, mus, sigmas = m.token_scores_of(trained_tiny_lm, train.questions[:3], train.answers[:3])
    assert [len(x) for x in lps] == [int(k) for k in n_t[:3]]
    assert np.allclose([-x.sum() for x in lps], nll_t[:3], atol=1e-3)  # same log-probs as the NLL
    assert all(len(a) == len(b) == len(c) for a, b, c in zip(lps, mus, sigmas))
    assert m.perplexity_of(trained_tiny_lm, ["Alice was born in Paris."]) > 1.0


def test_relearn_steps(trained_tiny_lm, small_authors):
    forget = small_authors.forget("forget10")
    nll, n = m.answer_nll_of(trained_tiny_lm, forget.questions, forget.answers)
    prob = m.answer_probability(nll, n).mean()
    assert m.relearn_steps(trained_tiny_lm, forget, target_prob=prob) == 0
    steps = m.relearn_steps(trained_tiny_lm, forget, target_prob=min(0.99, prob + 0.2), lr=5e-3, max_steps=30)
    assert 1 <= steps <= 31
    assert m.relearn_steps(trained_tiny_lm, forget, target_prob=1.0, max_steps=2) == 3  # never: max_steps + 1
