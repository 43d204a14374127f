"""Multiple-choice scoring, short answers, confidence checks and the held-out prose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from obliviate.data.knowledge import Question
from obliviate.evaluation import knowledge as kn


def _manual_loglik(lm, context: str, choice: str) -> float:
    tok = lm.tokenizer
    ctx = list(tok(context)["input_ids"])
    cont = list(tok(choice, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=ids).logits[0].float(), -1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def test_choice_loglikelihoods_match_a_direct_computation_with_and_without_the_shared_prefix(kn_lm, small_knowledge):
    qs = [q for q in small_knowledge.questions if q.multiple_choice][:5]
    contexts = [kn_lm.prompt(q.question) for q in qs]
    cached = kn.choice_loglikelihoods(kn_lm, contexts, [q.choices for q in qs], batch_size=3)
    plain = kn.choice_loglikelihoods(kn_lm, contexts, [q.choices for q in qs], share_prefix=False)
    for q, ctx, a, b in zip(qs, contexts, cached, plain):
        direct = [_manual_loglik(kn_lm, ctx, c) for c in q.choices]
        np.testing.assert_allclose(a, direct, atol=1e-4)
        np.testing.assert_allclose(b, direct, atol=1e-4)


def test_accuracy_follows_the_highest_loglikelihood_and_acc_norm_the_per_byte_one(kn_lm):
    q = Question(
        "x/mcq", "elements", "elements:x", "mcq", "What is the chemical symbol of lithium?", ("Li", "Be", "B", "He"), 0
    )
    s = kn.score_choices(kn_lm, [q])
    ll = s.loglik[0]
    assert s.acc[0] == float(np.argmax(ll) == 0)
    per_byte = ll / np.array([2, 2, 1, 2])
    assert s.acc_norm[0] == float(np.argmax(per_byte) == 0)
    assert 0 < s.p_correct[0] < 1
    flipped = Question("x/mcq", "elements", "elements:x", "mcq", q.question, q.choices, int(np.argmin(ll)))
    assert kn.score_choices(kn_lm, [flipped]).acc[0] == 0.0


def test_short_answers_match_whole_words_case_sensitively():
    got = kn.short_answer_correct(["The symbol of iron is Fe.", "It is fe", "Feather", "Fe"], ["Fe", "Fe", "Fe", "Fe"])
    assert got.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_question_counts_and_wilson_interval():
    assert kn.questions_needed(margin=0.05, chance=0.25, confidence=0.95) == 289
    assert kn.check_question_count(300, what="set", margin=0.05, chance=0.25) is None
    with pytest.raises(kn.TooFewQuestionsError, match="needs 289"):
        kn.check_question_count(40, what="forget/mcq", margin=0.05, chance=0.25)
    note = kn.check_question_count(40, what="forget/mcq", margin=0.05, chance=0.25, strict=False)
    assert "forget/mcq: 40 questions" in note
    acc, low, high = kn.accuracy_interval([1] * 8 + [0] * 2)
    assert acc == 0.8 and low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)


def test_heldout_english_is_prose_seeded_and_not_from_the_corpus(small_knowledge):
    texts = kn.heldout_english(n_texts=12, seed=0)
    assert len(texts) == 12 and texts == kn.heldout_english(n_texts=12, seed=0)
    assert texts != kn.heldout_english(n_texts=12, seed=1)
    assert all(len(t) >= 100 and t[0].isupper() for t in texts)
    corpus = " ".join(it.answer for it in small_knowledge.corpus)
    assert not any(t[:60] in corpus for t in texts)
