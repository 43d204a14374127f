"""Language-model unlearning metrics: TOFU's (Maini et al. 2024), the membership attacks, MUSE's
privleak (Shi et al. 2024), relearning and fluency.

The metric functions take arrays (per-item NLLs, token log-probabilities, generated strings) and
return arrays or floats, so they can be checked by hand; the ``*_of`` readers compute those
arrays from a :class:`~obliviate.models.lm.LanguageModel` with ``obliviate.lm.batches``. Formulas
follow the reference code, locuslab/open-unlearning ``src/evals/metrics/`` (memorization.py,
privacy.py, mia/*.py, utils.py); where the paper and the code differ, the docstring says which.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats

from obliviate.errors import InvalidInputError

__all__ = [
    "answer_probability",
    "normalised_answer_probability",
    "rouge_l_recall",
    "truth_ratio",
    "truth_ratio_closer_to_one",
    "truth_ratio_true_better",
    "forget_quality",
    "model_utility",
    "loss_score",
    "zlib_score",
    "min_k",
    "min_k_plus_plus",
    "mia_auc",
    "privleak",
    "perplexity",
    "degenerate_share",
    "is_degenerate",
    "answer_nll_of",
    "token_scores_of",
    "perplexity_of",
    "relearn_steps",
]

_EPS = 1e-10  # open-unlearning's guard in the truth ratio and the normalised probability


def _vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}.")
    return arr


def _lengths(n_tokens: Any, size: int, name: str) -> np.ndarray:
    n = np.asarray(n_tokens, dtype=np.float64)
    if n.shape != (size,) and n.ndim != 2:
        raise InvalidInputError(f"{name} must have one length per item ({size}), got shape {n.shape}.")
    if np.any(n <= 0):
        raise InvalidInputError(f"{name} must be positive token counts.")
    return n


# ----------------------------------------------------------------------------- TOFU
def answer_probability(nll_sum: Any, n_tokens: Any) -> np.ndarray:
    """TOFU's Prob per item: ``exp(-NLL_sum / |y|)``, the length-normalised answer probability
    (open-unlearning ``evaluate_probability``: ``exp(-avg_loss)``)."""
    nll = _vector(nll_sum, "nll_sum")
    return np.exp(-nll / _lengths(n_tokens, nll.size, "n_tokens"))


def normalised_answer_probability(prob_correct: Any, prob_perturbed: Any) -> np.ndarray:
    """TOFU's Prob on the real-authors and world-facts sets: ``p / (p + sum_k p_k + 1e-10)``, the
    correct answer's Prob against its perturbed answers' (open-unlearning ``probability_w_options``)."""
    p = _vector(prob_correct, "prob_correct")
    wrong = np.asarray(prob_perturbed, dtype=np.float64)
    if wrong.ndim != 2 or wrong.shape[0] != p.size:
        raise InvalidInputError(f"prob_perturbed must be [items, answers] with {p.size} rows, got {wrong.shape}.")
    return p / (p + wrong.sum(axis=1) + _EPS)


def rouge_l_recall(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L recall of each prediction against its reference (``rouge_score``, stemmer on), as
    TOFU scores the greedy answer (open-unlearning ``eval_rouge_recall``, ``rougeL`` recall)."""
    from rouge_score import rouge_scorer

    if isinstance(predictions, str) or isinstance(references, str) or len(predictions) != len(references):
        raise InvalidInputError("rouge_l_recall takes two equally long lists of strings.")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([scorer.score(ref, pred)["rougeL"].recall for pred, ref in zip(predictions, references)])


def truth_ratio(nll_paraphrased: Any, nll_perturbed: Any, len_paraphrased: Any, len_perturbed: Any) -> np.ndarray:
    """TOFU's truth ratio per item: ``TR = p_perturbed / p_paraphrased``.

    ``p_paraphrased = exp(-NLL_para / |para|)``; ``p_perturbed = exp(-mean_k NLL_k / |pert_k|)``,
    the *geometric* mean of the perturbed answers' length-normalised probabilities: this is what
    the reference code computes (open-unlearning ``truth_ratio``: ``wrong_prob = exp(-mean(avg
    losses))``, ``TR = wrong_prob / (correct_prob + 1e-10)``; TOFU's original ``eval_stat`` does
    the same), where the paper's Eq. writes an arithmetic mean of probabilities.
    ``nll_perturbed`` and ``len_perturbed`` are ``[items, k]``.
    """
    para = _vector(nll_paraphrased, "nll_paraphrased") / _lengths(len_paraphrased, np.size(nll_paraphrased), "len_paraphrased")
    pert = np.asarray(nll_perturbed, dtype=np.float64)
    pert_len = np.asarray(len_perturbed, dtype=np.float64)
    if pert.ndim != 2 or pert.shape[0] != para.size or pert.shape != pert_len.shape:
        raise InvalidInputError(
            f"nll_perturbed and len_perturbed must both be [items, k] with {para.size} rows, got {pert.shape}, {pert_len.shape}."
        )
    if np.any(pert_len <= 0):
        raise InvalidInputError("len_perturbed must be positive token counts.")
    wrong_prob = np.exp(-(pert / pert_len).mean(axis=1))
    return wrong_prob / (np.exp(-para) + _EPS)


def truth_ratio_closer_to_one(tr: Any) -> float:
    """The forget-set aggregate ``mean(min(TR, 1/TR))`` (1 = the model cannot tell true from false;
    open-unlearning ``closer_to_1_better``, with its ``1 / (TR + 1e-10)``)."""
    tr = _vector(tr, "tr")
    return float(np.mean(np.minimum(tr, 1.0 / (tr + _EPS))))


def truth_ratio_true_better(tr: Any) -> float:
    """The aggregate on retained and utility sets ``mean(max(0, 1 - TR))`` (higher = prefers the
    truth; open-unlearning ``true_better``)."""
    return float(np.mean(np.maximum(0.0, 1.0 - _vector(tr, "tr"))))


def forget_quality(tr_unlearned: Any, tr_retain: Any) -> float:
    """TOFU's forget quality: the p-value of the two-sample Kolmogorov-Smirnov test between the
    forget-set truth ratios of the unlearned model and of the retain-only model,
    ``scipy.stats.ks_2samp(...).pvalue`` (open-unlearning ``forget_quality``/``ks_test``). High
    (near 1) = indistinguishable from the model that never saw the forget set."""
    return float(stats.ks_2samp(_vector(tr_unlearned, "tr_unlearned"), _vector(tr_retain, "tr_retain")).pvalue)


def model_utility(values: Any) -> float:
    """TOFU's model utility: the harmonic mean of the utility metrics (Prob, ROUGE and truth ratio
    on the retain set, the real authors and the world facts); 0 if any is 0
    (open-unlearning ``hm_aggregate``, ``scipy.stats.hmean``)."""
    v = _vector(values, "values")
    if np.any(v < 0) or not np.all(np.isfinite(v)):
        raise InvalidInputError(f"model_utility takes finite non-negative metric values, got {v.tolist()}.")
    return 0.0 if np.any(v == 0) else float(stats.hmean(v))


# ----------------------------------------------------------------------------- membership attacks
def loss_score(nll_sum: Any, n_tokens: Any) -> np.ndarray:
    """LOSS attack (Yeom et al. 2018) per text: the mean token NLL ``NLL_sum / |x|`` (higher = more
    likely a non-member; open-unlearning ``LOSSAttack``, the average loss)."""
    nll = _vector(nll_sum, "nll_sum")
    return nll / _lengths(n_tokens, nll.size, "n_tokens")


def zlib_score(nll_sum: Any, n_tokens: Any, texts: Sequence[str]) -> np.ndarray:
    """zlib attack (Carlini et al. 2021): mean token NLL over the zlib entropy of the text,
    ``(NLL_sum / |x|) / len(zlib.compress(text.encode("utf-8")))`` (open-unlearning ``ZLIBAttack``)."""
    loss = loss_score(nll_sum, n_tokens)
    if isinstance(texts, str) or len(texts) != loss.size:
        raise InvalidInputError(f"zlib_score needs one text per item ({loss.size}).")
    entropy = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)
    return loss / entropy


def _sequences(values: Any, name: str) -> list[np.ndarray]:
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = [values]
    seqs = [np.asarray(v, dtype=np.float64).ravel() for v in values]
    if not seqs or any(s.size == 0 for s in seqs):
        raise InvalidInputError(f"{name} must be a non-empty list of non-empty per-token arrays.")
    return seqs


def _bottom_k_mean(scores: np.ndarray, k: float) -> float:
    n = max(1, int(scores.size * k))
    return float(np.mean(np.sort(scores)[:n]))


def _check_k(k: float) -> None:
    if not 0.0 < float(k) <= 1.0:
        raise InvalidInputError(f"k must be a fraction in (0, 1], got {k}.")


def min_k(token_logprobs: Any, k: float = 0.4) -> np.ndarray:
    """Min-K% Prob (Shi et al. ICLR 2024) per text: ``-mean`` of the lowest ``max(1, int(k*|x|))``
    token log-probabilities (higher = non-member; open-unlearning ``MinKProbAttack``).
    ``token_logprobs``: one 1-D array per text (or a single 1-D array)."""
    _check_k(k)
    return np.array([-_bottom_k_mean(s, k) for s in _sequences(token_logprobs, "token_logprobs")])


def min_k_plus_plus(token_logprobs: Any, mu: Any, sigma: Any, k: float = 0.4) -> np.ndarray:
    """Min-K%++ (Zhang et al. 2024) per text: Min-K% over ``(log p(x_t) - mu_t) / sigma_t``, with
    ``mu_t``, ``sigma_t`` the mean and standard deviation of ``log p`` over the vocabulary under
    the model's own next-token distribution at step t; ``sigma^2`` clamped at 1e-6 as in
    open-unlearning ``MinKPlusPlusAttack``."""
    _check_k(k)
    lps, mus, sigmas = (_sequences(x, n) for x, n in ((token_logprobs, "token_logprobs"), (mu, "mu"), (sigma, "sigma")))
    if not len(lps) == len(mus) == len(sigmas) or any(a.shape != b.shape or a.shape != c.shape for a, b, c in zip(lps, mus, sigmas)):
        raise InvalidInputError("token_logprobs, mu and sigma must have the same per-text lengths.")
    out = []
    for lp, m, s in zip(lps, mus, sigmas):
        out.append(-_bottom_k_mean((lp - m) / np.sqrt(np.maximum(s**2, 1e-6)), k))
    return np.array(out)


def mia_auc(scores_forget: Any, scores_holdout: Any) -> float:
    """Membership-attack AUC, forget (members) against holdout (non-members), with scores where
    higher = more non-member: ``P(score_holdout > score_forget)`` (ties count 1/2), i.e.
    ``roc_auc_score`` with the holdout as the positive class. As MUSE reports it: near 1 = the
    forget set is still recognised as trained on; near 0.5 = it looks like unseen data."""
    from sklearn.metrics import roc_auc_score

    f, h = _vector(scores_forget, "scores_forget"), _vector(scores_holdout, "scores_holdout")
    labels = np.r_[np.zeros(f.size), np.ones(h.size)]
    return float(roc_auc_score(labels, np.r_[f, h]))


def privleak(auc_unlearned: float, auc_retrained: float) -> float:
    """MUSE's PrivLeak (Shi et al. 2024, Sec. 3; open-unlearning ``privacy.privleak``), in percent:
    ``(A_u - A_r) / A_r * 100`` with ``A = 1 - AUC``, where AUC is :func:`mia_auc` (forget vs
    holdout, Min-40% in the suites; near 1 = the forget set is recognised as trained on). MUSE
    reports the AUC the other way round, hence the flip. 0 is ideal; an un-unlearned target is
    near -100 (MUSE's published target: -99.8): negative = under-unlearned (the forget set looks
    more like training data than it does to the retrained model), positive = over-unlearned.
    NaN when the retrained model's AUC is 1 (``A_r = 0``: the ratio is undefined; open-unlearning
    divides by ``1e-10`` instead)."""
    if not 0.0 <= float(auc_retrained) <= 1.0 or not 0.0 <= float(auc_unlearned) <= 1.0:
        raise InvalidInputError(f"AUCs must be in [0, 1], got {auc_unlearned}, {auc_retrained}.")
    a_u, a_r = 1.0 - float(auc_unlearned), 1.0 - float(auc_retrained)
    if a_r == 0.0:
        return float("nan")
    return (a_u - a_r) / a_r * 100.0


# ----------------------------------------------------------------------------- fluency
def perplexity(nll_sum: Any, n_tokens: Any) -> float:
    """Corpus perplexity ``exp(sum NLL / sum tokens)`` over held-out text."""
    nll = _vector(nll_sum, "nll_sum")
    n = _lengths(n_tokens, nll.size, "n_tokens")
    return float(np.exp(nll.sum() / n.sum()))


_WORD = re.compile(r"\w+|[^\w\s]")


def is_degenerate(answer: str, *, max_repeats: int = 3, min_distinct: float = 0.5) -> bool:
    """An answer is degenerate when it is empty, repeats one token ``max_repeats`` times in a row
    ("on on on"), or (six tokens or more) uses fewer than ``min_distinct`` distinct tokens per token."""
    tokens = _WORD.findall(answer.lower())
    if not tokens:
        return True
    run = 1
    for a, b in zip(tokens, tokens[1:]):
        run = run + 1 if a == b else 1
        if run >= max_repeats:
            return True
    return len(tokens) >= 6 and len(set(tokens)) / len(tokens) < min_distinct


def degenerate_share(answers: Sequence[str], *, max_repeats: int = 3, min_distinct: float = 0.5) -> float:
    """The share of answers that are degenerate (:func:`is_degenerate`): a collapse detector for
    methods that keep utility numbers but stop producing language."""
    if isinstance(answers, str) or len(answers) == 0:
        raise InvalidInputError("degenerate_share takes a non-empty list of answers.")
    return float(np.mean([is_degenerate(a, max_repeats=max_repeats, min_distinct=min_distinct) for a in answers]))


# ----------------------------------------------------------------------------- reading a model
def answer_nll_of(lm: Any, questions: Sequence[str], answers: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(NLL_sum, |y|)`` per question-answer pair under ``lm`` (no gradients)."""
    from obliviate.lm.batches import encode_qa, sequence_nll

    nll, n = [], []
    with torch.no_grad():
        for start in range(0, len(questions), batch_size):
            batch = encode_qa(lm, questions[start : start + batch_size], answers[start : start + batch_size])
            s, k = sequence_nll(lm, batch)
            nll.append(s.double().numpy())
            n.append(k.double().numpy())
    return np.concatenate(nll), np.concatenate(n)


def token_scores_of(
    lm: Any, questions: Sequence[str], answers: Sequence[str], *, batch_size: int = 64
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per pair, the answer tokens' ``(log p, mu, sigma)`` arrays for Min-K% and Min-K%++."""
    from obliviate.lm.batches import encode_qa, token_logprobs

    lps, mus, sigmas = [], [], []
    for start in range(0, len(questions), batch_size):
        batch = encode_qa(lm, questions[start : start + batch_size], answers[start : start + batch_size])
        out = token_logprobs(lm, batch)
        for row in range(out.mask.shape[0]):
            keep = out.mask[row]
            lps.append(out.logprobs[row][keep].double().numpy())
            mus.append(out.mu[row][keep].double().numpy())
            sigmas.append(out.sigma[row][keep].double().numpy())
    return lps, mus, sigmas


def perplexity_of(lm: Any, texts: Sequence[str], *, batch_size: int = 64) -> float:
    """Perplexity of ``lm`` on plain ``texts`` (each followed by eos; the first token is the context)."""
    from obliviate.lm.batches import IGNORE_INDEX, answer_logprobs

    tok = lm.tokenizer
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            rows = [lm.truncate(list(tok(t)["input_ids"]) + [tok.eos_token_id], what="text") for t in texts[start : start + batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
            labels = torch.tensor([r + [IGNORE_INDEX] * (width - len(r)) for r in rows])
            mask = (labels != IGNORE_INDEX).long()
            logits = lm.model(input_ids=ids, attention_mask=mask).logits
            picked, valid = answer_logprobs(logits, labels)
            total -= float(picked.sum())
            count += int(valid.sum())
    return float(np.exp(total / max(count, 1)))


def relearn_steps(
    lm: Any,
    forget: Any,
    *,
    target_prob: float,
    lr: float = 1e-3,
    batch_size: int = 8,
    max_steps: int = 50,
    seed: int = 0,
) -> int:
    """Fine-tuning steps on the forget set until its mean answer Prob is back at ``target_prob``.

    Relearning time (Golatkar et al. 2020; for LMs, Lynch et al. 2024 "Eight methods to evaluate
    robust unlearning in LLMs", Sec. 4.5): residual knowledge shows as fast recovery. A copy of
    ``lm`` is trained with AdamW (constant ``lr``) on the mean answer-token NLL of forget batches
    drawn in a seeded order; mean Prob is measured before the first step and after each. Returns
    the first step count at which it is ``>= target_prob`` (0 if already), or ``max_steps + 1``
    when not reached. The bench sets ``target_prob`` to 90% of the target model's forget Prob.
    """
    from obliviate.lm.batches import qa_batches, sequence_nll
    from obliviate.training.loop import check_finite, seeded_generator

    if not 0.0 <= float(target_prob) <= 1.0:
        raise InvalidInputError(f"target_prob must be in [0, 1], got {target_prob}.")
    if max_steps < 0 or batch_size < 1 or not lr > 0:
        raise InvalidInputError("relearn_steps needs max_steps >= 0, batch_size >= 1 and lr > 0.")
    work = lm.copy()
    net = work.model
    for p in net.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    order = seeded_generator(seed, 9103)

    def mean_prob() -> float:
        net.eval()
        nll, n = answer_nll_of(work, forget.questions, forget.answers)
        net.train()
        return float(np.mean(answer_probability(nll, n)))

    if mean_prob() >= target_prob:
        return 0
    step = 0
    while step < max_steps:
        for batch in qa_batches(work, forget, batch_size, generator=order):
            nll, n = sequence_nll(work, batch)
            loss = nll.sum() / n.sum().clamp_min(1)
            check_finite(loss, step=step, where="relearning", lr=lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if mean_prob() >= target_prob:
                return step
            if step >= max_steps:
                break
    return max_steps + 1
