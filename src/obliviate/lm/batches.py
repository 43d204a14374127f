"""Question-answer batches for causal language models, and the per-token quantities read from them.

Every language-model method and metric reads a model the same way (open-unlearning's
``QADataset`` collator and ``evals/metrics/utils.py``): the prompt ``lm.prompt(question)`` and the
answer tokens (plus end-of-sequence) in one sequence, labels ``-100`` on the prompt and the
padding, so that only the answer is scored. With ``logits`` of shape ``[B, L, V]`` the label of
position ``t + 1`` is predicted at position ``t``:

    log p(y_t | x, y_<t) = log_softmax(logits[:, :-1])[..., labels[:, 1:]]

``NLL_sum = -sum_t log p(y_t | ...)`` over the answer tokens (REFERENCES, Language models).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from obliviate.errors import InvalidInputError
from obliviate.training.loop import minibatches

__all__ = [
    "IGNORE_INDEX",
    "encode_qa",
    "network_of",
    "answer_logprobs",
    "sequence_nll",
    "TokenLogprobs",
    "token_logprobs",
    "qa_items",
    "answers_of",
    "qa_batches",
]

IGNORE_INDEX = -100
"""The label of prompt and padding positions (PyTorch's ``cross_entropy`` ignore index)."""


def _pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its eos id, else 0: a tokenizer without a pad token is handled."""
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


def _ids(tokenizer: Any, text: str, *, special: bool) -> list[int]:
    out = tokenizer(text, add_special_tokens=special)
    return list(out["input_ids"])


def encode_qa(
    lm: Any,
    questions: Sequence[str],
    answers: Sequence[str],
    *,
    max_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Tokenise question-answer pairs into one right-padded batch.

    Each sequence is ``tokens(lm.prompt(question)) + tokens(answer) + [eos]``; the answer is
    tokenised on its own (so the prompt/answer boundary is exact, as open-unlearning's collator
    masks ``len(prompt tokens)`` positions). Returns ``input_ids`` and ``labels`` (int64,
    ``labels = -100`` on the prompt and the padding) and ``attention_mask`` ([B, L]).

    A sequence longer than ``max_length`` (default ``lm.max_length``) is cut: the answer keeps at
    least half the window (its tail is dropped first), the prompt loses its *start*, so the
    tokens right before the answer survive. A ``UserWarning`` says how many sequences were cut.
    """
    if isinstance(questions, str) or isinstance(answers, str):
        raise InvalidInputError("encode_qa takes sequences of questions and answers, not single strings.")
    questions, answers = list(questions), list(answers)
    if len(questions) != len(answers):
        raise InvalidInputError(f"encode_qa: {len(questions)} questions but {len(answers)} answers; pass one answer each.")
    if not questions:
        raise InvalidInputError("encode_qa needs at least one question-answer pair.")
    limit = int(max_length if max_length is not None else getattr(lm, "max_length", 0) or 0)
    if limit < 2:
        raise InvalidInputError(f"max_length must be at least 2 tokens, got {limit}; set it on the LanguageModel or pass max_length=.")
    tokenizer = lm.tokenizer
    eos = getattr(tokenizer, "eos_token_id", None)
    pad = _pad_id(tokenizer)
    rows: list[tuple[list[int], int]] = []
    cut = 0
    for question, answer in zip(questions, answers):
        prompt = _ids(tokenizer, lm.prompt(question), special=True)
        reply = _ids(tokenizer, answer, special=False) + ([int(eos)] if eos is not None else [])
        if not reply:
            raise InvalidInputError(f"the answer {answer!r} has no tokens and the tokenizer has no eos token.")
        if len(prompt) + len(reply) > limit:
            cut += 1
            keep_reply = min(len(reply), max(limit - len(prompt), limit // 2))
            reply = reply[:keep_reply]
            prompt = prompt[len(prompt) - (limit - keep_reply):] if limit > keep_reply else []
        rows.append((prompt + reply, len(prompt)))
    if cut:
        warnings.warn(
            f"{cut} of {len(rows)} question-answer sequence(s) exceed {limit} tokens and were truncated "
            "(prompt start and answer tail dropped); raise max_length to keep them whole.",
            UserWarning,
            stacklevel=2,
        )
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        seq = torch.tensor(ids, dtype=torch.long)
        input_ids[i, : len(ids)] = seq
        labels[i, n_prompt : len(ids)] = seq[n_prompt:]
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def network_of(model: Any) -> torch.nn.Module:
    """The causal-LM ``nn.Module`` of a ``LanguageModel`` (its ``.model``) or the module itself."""
    if hasattr(model, "tokenizer") and isinstance(getattr(model, "model", None), torch.nn.Module):
        return model.model
    if isinstance(model, torch.nn.Module):
        return model
    raise InvalidInputError(f"expected a LanguageModel or a causal-LM torch module, got {type(model).__name__}.")


def _logits(model: Any, batch: dict[str, torch.Tensor], **kwargs: Any) -> Any:
    net = network_of(model)
    return net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)


def answer_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(label_t), mask)`` for the shifted labels: both [B, L-1]; 0 where the mask is False."""
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return picked * mask, mask


def sequence_nll(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(NLL_sum [B], |y| [B])``: the summed answer negative log-likelihood and the answer length.

    Gradients flow (methods differentiate it); wrap in ``torch.no_grad()`` to evaluate.
    ``NLL_sum / |y|`` is the mean token NLL; ``exp(-NLL_sum / |y|)`` is TOFU's Prob.
    """
    logits = _logits(model, batch).logits
    picked, mask = answer_logprobs(logits, batch["labels"])
    return -picked.sum(dim=1), mask.sum(dim=1)


class TokenLogprobs(NamedTuple):
    """Per-token quantities for the membership attacks, all [B, L-1] on the shifted positions.

    ``logprobs[b, t] = log p(x_{t+1} | x_<=t)`` of the label token; ``mask`` is True on answer
    tokens; ``mu`` and ``sigma`` are the mean and standard deviation of ``log p(z | x_<=t)`` with
    ``z`` drawn from the model's own next-token distribution (Min-K%++, Zhang et al. 2024, Eq. 2:
    ``mu = E_z[log p(z)]``, ``sigma^2 = E_z[(log p(z))^2] - mu^2``, as the authors' code computes).
    Entries off the mask are 0 (``sigma`` 1).
    """

    logprobs: torch.Tensor
    mask: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor


@torch.no_grad()
def token_logprobs(model: Any, batch: dict[str, torch.Tensor]) -> TokenLogprobs:
    """The label tokens' log-probabilities with the per-step ``mu``/``sigma`` for Min-K%++ (no grad)."""
    logits = _logits(model, batch).logits
    target = batch["labels"][:, 1:]
    mask = target != IGNORE_INDEX
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    probs = logp.exp()
    mu = (probs * logp).sum(-1)
    var = ((probs * logp.square()).sum(-1) - mu.square()).clamp_min(0.0)
    sigma = torch.where(mask, var.sqrt(), torch.ones_like(var))
    return TokenLogprobs(picked * mask, mask, mu * mask, sigma)


def qa_items(data: Any) -> list[Any]:
    """The items of a ``QADataset`` (its ``items``) or of any sequence of ``QAItem``."""
    items = getattr(data, "items", data)
    if callable(items):
        items = items()
    return list(items)


AnswerChoice = str | Sequence[str] | Callable[[Any], str]


def answers_of(
    items: Sequence[Any],
    answers: AnswerChoice,
    *,
    idk_answers: Sequence[str] | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """The answer text per item: a field name (``"answer"``, ``"paraphrased_answer"``), ``"idk"``
    (one of ``idk_answers`` per item, drawn with ``generator`` as open-unlearning draws a random
    IDK reply per example), a list aligned with the items, or a function of the item."""
    if callable(answers):
        return [str(answers(item)) for item in items]
    if isinstance(answers, str):
        if answers == "idk":
            bank = list(idk_answers or [])
            if not bank:
                raise InvalidInputError('answers="idk" needs idk_answers= (the "I don\'t know" answer bank).')
            picks = torch.randint(len(bank), (len(items),), generator=generator).tolist()
            return [bank[k] for k in picks]
        if items and not hasattr(items[0], answers):
            raise InvalidInputError(
                f"answers={answers!r} is not a field of the items; use 'answer', 'paraphrased_answer', 'idk', "
                "a list of strings or a function of the item."
            )
        return [str(getattr(item, answers)) for item in items]
    answers = list(answers)
    if len(answers) != len(items):
        raise InvalidInputError(f"{len(answers)} answers given for {len(items)} items; pass one per item.")
    return [str(a) for a in answers]


def qa_batches(
    lm: Any,
    data: Any,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    answers: AnswerChoice = "answer",
    idk_answers: Sequence[str] | None = None,
    max_length: int | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """One seeded pass over ``data`` (a ``QADataset``) as :func:`encode_qa` batches.

    Each batch also holds ``ids`` (int64 item ids). Order: ``minibatches`` with ``generator``
    (the same seeded order as the classifier loops; a trailing single item joins the batch before).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size <= 0:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}.")
    items = qa_items(data)
    if not items:
        raise InvalidInputError("qa_batches: the dataset has no items.")
    texts = answers_of(items, answers, idk_answers=idk_answers, generator=generator)
    for idx in minibatches(len(items), int(batch_size), generator=generator, shuffle=shuffle):
        chosen = idx.tolist()
        batch = encode_qa(
            lm, [items[i].question for i in chosen], [texts[i] for i in chosen], max_length=max_length
        )
        batch["ids"] = torch.tensor([int(items[i].id) for i in chosen], dtype=torch.long)
        yield batch
