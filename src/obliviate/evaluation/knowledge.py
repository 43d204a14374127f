"""Scoring knowledge questions: multiple choice as lm-evaluation-harness does it, short answers, perplexity.

Multiple choice (lm-evaluation-harness ``multiple_choice`` output type, "cloze" form): the context is
the chat prompt ``lm.prompt(prefix + question)``; each choice is a continuation, scored by its summed
log-likelihood ``sum_t log p(c_t | context, c_<t)``. ``acc`` picks the highest; ``acc_norm`` divides
by the choice's length in UTF-8 bytes first (the harness's ``acc_norm``). Chance is ``1 / k``.
Continuations are tokenised on their own, as the LM methods' batches tokenise answers.

The shared start of every prompt (the chat template's system turn) is run once and its key/value
cache reused for every row, which gives the same log-likelihoods (checked in the tests) at about
half the cost on SmolLM2.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from obliviate.errors import (
    InvalidInputError,
    TooFewQuestionsError,
)

__all__ = [
    "ChoiceScores",
    "TooFewQuestionsError",
    "choice_loglikelihoods",
    "score_choices",
    "short_answer_correct",
    "accuracy_interval",
    "questions_needed",
    "check_question_count",
    "heldout_english",
    "heldout_perplexity",
]


@dataclass(frozen=True)
class ChoiceScores:
    """Per question: ``loglik`` (one array of choice log-likelihoods each), ``acc`` and ``acc_norm``
    (0/1), and ``p_correct``: the correct choice's share of ``softmax(loglik)`` (1/k = no preference)."""

    loglik: list[np.ndarray]
    acc: np.ndarray
    acc_norm: np.ndarray
    p_correct: np.ndarray


def _net(lm: Any) -> torch.nn.Module:
    return lm.model


def _common_prefix(rows: Sequence[list[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        t = first[i]
        if any(r[i] != t for r in rows):
            return i
    return n


def _expand_cache(cache: Any, batch: int) -> Any:
    out = copy.deepcopy(cache)
    if batch > 1:
        out.batch_repeat_interleave(batch)
    return out


@torch.no_grad()
def choice_loglikelihoods(
    lm: Any,
    contexts: Sequence[str],
    choices: Sequence[Sequence[str]],
    *,
    batch_size: int = 32,
    share_prefix: bool = True,
) -> list[np.ndarray]:
    """``sum log p(choice | context)`` for every choice of every context (contexts are full prompt texts).

    Rows (context + one choice) run in batches of ``batch_size``; with ``share_prefix`` the longest
    token prefix common to all contexts runs once and its cache is reused (same numbers, less work).
    """
    if isinstance(contexts, str) or len(contexts) != len(choices):
        raise InvalidInputError("choice_loglikelihoods takes a list of contexts and one list of choices per context.")
    if not contexts:
        return []
    tok = lm.tokenizer
    net = _net(lm)
    was_training = net.training
    net.eval()
    ctx_ids = [list(tok(c)["input_ids"]) for c in contexts]
    rows: list[tuple[int, list[int], int]] = []  # (question index, context ids, continuation ids)
    for qi, (ids, opts) in enumerate(zip(ctx_ids, choices)):
        if not opts:
            raise InvalidInputError(f"context {qi} has no choices.")
        for opt in opts:
            cont = list(tok(str(opt), add_special_tokens=False)["input_ids"])
            if not cont:
                raise InvalidInputError(f"the choice {opt!r} has no tokens.")
            rows.append((qi, ids + cont, len(cont)))
    limit = int(lm.max_length)
    if any(len(r[1]) > limit for r in rows):
        warnings.warn(f"some multiple-choice rows exceed {limit} tokens; their context start is cut.", stacklevel=2)
        rows = [(qi, ids[-limit:], n) for qi, ids, n in rows]
    prefix = _common_prefix([r[1][: len(r[1]) - r[2]] for r in rows]) if share_prefix else 0
    prefix = max(0, prefix - 1)  # keep at least one context token in each row: it predicts the first choice token
    cache = None
    head = net.get_output_embeddings()
    body = net.base_model if head is not None else net
    cache_arg = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
    if prefix >= 2:
        try:
            out = body(input_ids=torch.tensor([rows[0][1][:prefix]]), use_cache=True)
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        except (TypeError, ValueError, AttributeError):  # a model without a usable cache: run whole rows
            cache, prefix = None, 0
    if cache is None:
        prefix = 0
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    values: list[list[float]] = [[] for _ in contexts]
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        suffixes = [ids[prefix:] for _, ids, _ in part]
        width = max(len(s) for s in suffixes)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in suffixes], dtype=torch.long)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in suffixes], dtype=torch.long)
        kwargs: dict[str, Any] = {}
        if cache is not None:
            mask = torch.cat([torch.ones(len(part), prefix, dtype=torch.long), mask], dim=1)
            kwargs = {cache_arg: _expand_cache(cache, len(part)), "use_cache": True}
        # the positions whose next-token distribution scores a continuation token
        sel_rows, sel_pos, targets = [], [], []
        for b, (s, (_, _, n)) in enumerate(zip(suffixes, part)):
            for t in range(len(s) - n, len(s)):
                sel_rows.append(b)
                sel_pos.append(t - 1)
                targets.append(s[t])
        if head is not None:
            hidden = body(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state
            logits = head(hidden[sel_rows, sel_pos])
        else:
            logits = net(input_ids=ids, attention_mask=mask, **kwargs).logits[sel_rows, sel_pos]
        logp = F.log_softmax(logits.float(), dim=-1).gather(-1, torch.tensor(targets).unsqueeze(-1)).squeeze(-1)
        k = 0
        for qi, _, n in part:
            values[qi].append(float(logp[k : k + n].sum()))
            k += n
    if was_training:
        net.train()
    return [np.asarray(v, dtype=np.float64) for v in values]


def score_choices(
    lm: Any,
    questions: Sequence[Any],
    *,
    prefix: str = "",
    batch_size: int = 32,
    share_prefix: bool = True,
    shots: Sequence[tuple[str, str]] = (),
) -> ChoiceScores:
    """Score multiple-choice ``questions`` (with ``question``, ``choices``, ``answer``); ``prefix`` is
    placed before each question inside the user turn; ``shots`` are (question, answer) pairs given as
    earlier conversation turns (:func:`obliviate.evaluation.attacks.few_shot_context`): the in-context
    attack's two layouts."""
    from obliviate.evaluation.attacks import few_shot_context

    if not questions:
        raise InvalidInputError("score_choices needs at least one question.")
    if shots and prefix:
        raise InvalidInputError("give the in-context examples as prefix= or as shots=, not both.")
    contexts = [few_shot_context(lm, shots, prefix + q.question) for q in questions]
    ll = choice_loglikelihoods(
        lm, contexts, [q.choices for q in questions], batch_size=batch_size, share_prefix=share_prefix
    )
    acc, acc_norm, p = [], [], []
    for q, v in zip(questions, ll):
        nbytes = np.array([max(1, len(c.encode("utf-8"))) for c in q.choices], dtype=np.float64)
        acc.append(float(int(np.argmax(v)) == q.answer))
        acc_norm.append(float(int(np.argmax(v / nbytes)) == q.answer))
        z = np.exp(v - v.max())
        p.append(float(z[q.answer] / z.sum()))
    return ChoiceScores(ll, np.asarray(acc), np.asarray(acc_norm), np.asarray(p))


def short_answer_correct(answers: Sequence[str], expected: Sequence[str]) -> np.ndarray:
    """1 where the free answer contains the expected string as a whole word (case-sensitive: "Fe"
    must not match "fe"), else 0."""
    if len(answers) != len(expected):
        raise InvalidInputError(f"{len(answers)} answers for {len(expected)} expected strings.")
    out = [re.search(rf"(?<![\w]){re.escape(e)}(?![\w])", a) is not None for a, e in zip(answers, expected)]
    return np.asarray(out, dtype=np.float64)


# ---------------------------------------------------------------- how many questions are enough
def _z(confidence: float) -> float:
    from scipy.stats import norm

    if not 0.5 < float(confidence) < 1.0:
        raise InvalidInputError(f"confidence must be in (0.5, 1), got {confidence}.")
    return float(norm.ppf(0.5 + confidence / 2))


def accuracy_interval(correct: Any, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(accuracy, low, high)``: the Wilson score interval at ``confidence`` for 0/1 outcomes."""
    x = np.asarray(correct, dtype=np.float64).ravel()
    if x.size == 0:
        raise InvalidInputError("accuracy_interval needs at least one outcome.")
    n, p, z = x.size, float(x.mean()), _z(confidence)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def questions_needed(*, margin: float, chance: float, confidence: float = 0.95) -> int:
    """Questions needed for a normal-approximation interval of half-width ``margin`` around an
    accuracy at ``chance`` (the hardest place to tell "at chance" from "above"): ``z^2 p(1-p) / margin^2``."""
    if not 0.0 < margin < 1.0 or not 0.0 < chance < 1.0:
        raise InvalidInputError(f"margin and chance must be in (0, 1), got {margin}, {chance}.")
    z = _z(confidence)
    return int(math.ceil(z * z * chance * (1 - chance) / (margin * margin)))


def check_question_count(
    n: int, *, what: str, margin: float, chance: float, confidence: float = 0.95, strict: bool = True
) -> str | None:
    """None when ``n`` questions resolve ``margin`` at ``confidence``; else the reason, raised as
    :class:`TooFewQuestionsError` when ``strict``."""
    need = questions_needed(margin=margin, chance=chance, confidence=confidence)
    if n >= need:
        return None
    half = _z(confidence) * math.sqrt(chance * (1 - chance) / max(n, 1))
    text = (
        f"{what}: {n} questions give a {confidence:.0%} interval of about \u00b1{100 * half:.0f} points near chance "
        f"({chance:.2f}), too wide to resolve \u00b1{100 * margin:.0f} points; that needs {need} questions"
    )
    if strict:
        raise TooFewQuestionsError(text + " (use more subjects, or state a wider margin).")
    return text


# ---------------------------------------------------------------- fluency


def heldout_english(*, n_texts: int = 24, max_chars: int = 500, seed: int = 0) -> list[str]:
    """English prose that no method trains on: paragraphs of the Python documentation shipped with
    the standard library (``pydoc_data.topics.topics``), the ones that read as sentences (no code,
    no tables), cut at a sentence end within ``max_chars``; ``n_texts`` of them in a seeded order."""
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for block in topics[key].split("\n\n"):
            lines = block.strip("\n").splitlines()
            if not lines or any(line.startswith("   ") for line in lines):  # code and directives are indented
                continue
            text = " ".join(line.strip() for line in lines)
            if len(text) < 200 or not text[0].isupper() or any(ch in text for ch in "*=`{}|<>[]"):
                continue
            if sum(c.isalpha() or c in " ,.;'-" for c in text) / len(text) < 0.95:
                continue
            cut = text[:max_chars]
            end = cut.rfind(".")
            paragraphs.append(cut[: end + 1] if end > 100 else cut)
    paragraphs = sorted(set(paragraphs))
    if len(paragraphs) < n_texts:
        raise InvalidInputError(f"only {len(paragraphs)} held-out paragraphs are available, asked for {n_texts}.")
    order = np.random.default_rng(seed).permutation(len(paragraphs))[:n_texts]
    return [paragraphs[i] for i in sorted(order)]


def heldout_perplexity(lm: Any, texts: Sequence[str], *, batch_size: int = 8) -> float:
    """Perplexity of ``lm`` on ``texts`` (:func:`obliviate.evaluation.lm.perplexity_of`)."""
    from obliviate.evaluation.lm import perplexity_of

    return perplexity_of(lm, list(texts), batch_size=batch_size)
