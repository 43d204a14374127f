"""ICUL (Pawelczyk et al. 2023) on the tiny GPT: the context's construction, its scores, its evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from obliviate.data.authors import QADataset, QAItem
from obliviate.data.knowledge import knowledge_benchmark
from obliviate.errors import InvalidInputError
from obliviate.evaluation.knowledge import choice_loglikelihoods
from obliviate.models.lm import tiny_gpt
from obliviate.prompting import PromptedModel, icul_evaluation, icul_model, yes_no_facts
from obliviate.prompting.icul import label_scores, membership_auc
from obliviate.request import ForgetRequest
from obliviate.unlearning import unlearn

FORGET = [("Is iron Fe?", "yes"), ("Is gold Ag?", "no")]
RETAIN = [(f"Is fact {i} true?", "yes" if i % 2 else "no") for i in range(8)]


@pytest.fixture(scope="module")
def tiny():
    texts = [f"Question: {x}\nAnswer: {y}" for x, y in FORGET + RETAIN] * 3
    return tiny_gpt(texts, n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=512)


def test_context_is_flipped_forget_then_k_correct_then_query(tiny):
    m = icul_model(tiny, FORGET, RETAIN, k=3, seed=0)
    ctx = m.policy.context("Is copper Cu?")
    assert ctx[:2] == [("Is iron Fe?", "no"), ("Is gold Ag?", "yes")]  # labels flipped, forget points first
    assert len(ctx) == 5 and all(pair in RETAIN for pair in ctx[2:]) and len(set(ctx[2:])) == 3
    text = m.prompt("Is copper Cu?")
    assert text.startswith("Question: Is iron Fe?\nAnswer: no\n\nQuestion: Is gold Ag?\nAnswer: yes\n\n")
    assert text.endswith("Question: Is copper Cu?\nAnswer:")
    assert m.policy.context("Is copper Cu?") == ctx  # seeded by (seed, query): the same context again
    other = icul_model(tiny, FORGET, RETAIN, k=3, seed=1)
    contexts = {tuple(other.policy.context(f"q{i}")) for i in range(6)}
    assert len(contexts) > 1  # a fresh draw per query, as the paper's context loader


def test_bad_labels_and_k_are_refused(tiny):
    with pytest.raises(InvalidInputError, match="not one of the task's labels"):
        icul_model(tiny, [("x", "maybe")], RETAIN)
    with pytest.raises(InvalidInputError, match="two different class labels"):
        icul_model(tiny, FORGET, RETAIN, labels="yes")
    with pytest.raises(InvalidInputError, match="retain points exist"):
        icul_model(tiny, FORGET, RETAIN, k=9)


def test_label_scores_are_the_stable_logit(tiny):
    s = label_scores(tiny, FORGET)
    ll = choice_loglikelihoods(tiny, [tiny.prompt(x) for x, _ in FORGET], [["yes", "no"]] * 2)
    for i, (_, y) in enumerate(FORGET):
        log_p = ll[i][["yes", "no"].index(y)]
        assert s["phi"][i] == pytest.approx(log_p - math.log(1 - math.exp(log_p)), rel=1e-6)
        assert s["correct"][i] == float(ll[i][["yes", "no"].index(y)] > ll[i][1 - ["yes", "no"].index(y)])


def test_membership_auc():
    assert membership_auc([3, 4], [1, 2]) == 1.0
    assert membership_auc([1, 2], [3, 4]) == 0.0
    assert membership_auc([1, 1], [1, 1]) == 0.5


def test_evaluation_reports_every_model_and_icul(tiny):
    out = icul_evaluation({"original": tiny}, forget=FORGET, retain=RETAIN[:4], test=RETAIN[4:], chunk=1, k=2)
    assert set(out) == {"original", "icul(original)"}
    for row in out.values():
        assert 0 <= row["mia_auc"] <= 1 and 0 <= row["forget_acc"] <= 1 and np.isfinite(row["forget_phi"])
    assert out["icul(original)"]["forget_phi"] != out["original"]["forget_phi"]  # the context changes the scores


def test_yes_no_facts_and_registered_method(tiny):
    bench = knowledge_benchmark(limit={"elements": 6, "geography": 4, "compounds": 4})
    data = yes_no_facts(bench.questions, seed=0)
    answers = [it.answer for it in data]
    assert set(answers) == {"yes", "no"} and all(it.question.endswith("Answer yes or no.") for it in data)
    assert yes_no_facts(bench.questions, seed=0).items == data.items
    owner = data.items[0].owner
    out = unlearn(tiny, ForgetRequest(owners=[owner]), data, method="icul", settings={"k": 2})
    assert isinstance(out.model, PromptedModel) and out.guarantee.kind == "behavioural"
    flipped = {x: y for x, y in out.model.policy.forget}
    for it in data:
        if it.owner == owner:
            assert flipped[it.question] != it.answer
    small = QADataset(tuple(QAItem(i, f"o{i}", f"q{i}", "maybe", "maybe", ("x",)) for i in range(4)))
    with pytest.raises(InvalidInputError, match="labels"):
        unlearn(tiny, ForgetRequest(owners=["o0"]), small, method="icul")


def test_lira_scores_are_the_per_example_gaussian_log_ratio():
    from obliviate.prompting.icul import lira_scores

    in_phi = [[2.0, 4.0, 3.0], [0.0, 0.5, 1.0]]
    out_phi = [[-1.0, 0.0, 1.0], [-1.0, -0.5, 0.0]]
    phi = [3.0, -0.5]
    got = lira_scores(phi, in_phi, out_phi)

    def logpdf(x, xs):
        mu, sd = np.mean(xs), np.std(xs, ddof=1)
        return -0.5 * ((x - mu) / sd) ** 2 - math.log(sd)

    for i in range(2):
        assert got[i] == pytest.approx(logpdf(phi[i], in_phi[i]) - logpdf(phi[i], out_phi[i]))
    assert got[0] > 0 > got[1]  # at the IN mean: member-like; at the OUT mean: not
    # per-example: the same phi is member-like for one point and not for another (a global threshold cannot)
    same = lira_scores([1.0, 1.0], [[0.9, 1.0, 1.1], [4.0, 5.0, 6.0]], [[-1.0, 0.0, -0.5], [0.9, 1.0, 1.1]])
    assert same[0] > 0 > same[1]
    with pytest.raises(InvalidInputError, match="at least 2"):
        lira_scores([1.0], [[1.0]], [[0.0, 1.0]])
    with pytest.raises(InvalidInputError, match="every point"):
        lira_scores([1.0, 2.0], [[1.0, 2.0]], [[0.0, 1.0]])


def test_correct_label_ablation_keeps_the_labels_and_the_context(tiny):
    flipped = icul_model(tiny, FORGET, RETAIN, k=3, seed=0)
    kept = icul_model(tiny, FORGET, RETAIN, k=3, seed=0, flip=False)
    assert kept.policy.context("Is copper Cu?")[:2] == FORGET  # the true labels
    assert kept.policy.context("Is copper Cu?")[2:] == flipped.policy.context("Is copper Cu?")[2:]  # same k points
    with pytest.raises(InvalidInputError, match="not one of the task's labels"):
        icul_model(tiny, [("x", "maybe")], RETAIN, flip=False)  # labels are checked either way
    out = icul_evaluation(
        {"original": tiny}, forget=FORGET, retain=RETAIN[:4], test=RETAIN[4:], chunk=1, k=2, flip=False
    )
    ref = icul_evaluation({"original": tiny}, forget=FORGET, retain=RETAIN[:4], test=RETAIN[4:], chunk=1, k=2)
    assert out["icul(original)"]["forget_phi"] != ref["icul(original)"]["forget_phi"]
