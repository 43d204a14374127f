"""Greedy answers: what the model says when asked, for ROUGE and the fluency check.

TOFU (Maini et al. 2024) scores the greedy generation (``do_sample=False``) given the prompt.
Prompts are left-padded in batches, so every row's answer starts right after its own prompt;
the answer is the decoded new tokens up to the end-of-sequence token, special tokens dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from obliviate.errors import InvalidInputError
from obliviate.models.lm import LanguageModel

__all__ = ["free_answers", "greedy_answers"]


@torch.no_grad()
def greedy_answers(
    lm: LanguageModel,
    questions: Sequence[str],
    *,
    max_new_tokens: int = 48,
    batch_size: int = 32,
) -> list[str]:
    """Greedy-decoded answers of ``lm`` to ``questions`` (prompt ``lm.prompt(q)``), one string each.

    A prompt longer than ``lm.max_length - max_new_tokens`` tokens loses its start (with a warning).
    Without a chat template the answer is cut at its first newline (the ``Question:/Answer:``
    format puts nothing after the answer's line).
    """
    if isinstance(questions, str):
        raise InvalidInputError("greedy_answers takes a list of questions, not one string.")
    if max_new_tokens < 1 or batch_size < 1:
        raise InvalidInputError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}.")
    room = lm.max_length - max_new_tokens
    if room < 1:
        raise InvalidInputError(f"max_new_tokens={max_new_tokens} leaves no room for the prompt in {lm.max_length} tokens.")
    tokenizer, net = lm.tokenizer, lm.model
    pad = tokenizer.pad_token_id
    was_training = net.training
    net.eval()
    answers: list[str] = []
    cut = 0
    for start in range(0, len(questions), batch_size):
        prompts = [list(tokenizer(lm.prompt(q))["input_ids"]) for q in questions[start : start + batch_size]]
        cut += sum(len(p) > room for p in prompts)
        prompts = [p[-room:] for p in prompts]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)
        out = net.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
        for row in out[:, width:]:
            text = tokenizer.decode(row, skip_special_tokens=True).strip()
            answers.append(text if lm.has_chat_template else text.split("\n", 1)[0].strip())
    net.train(was_training)
    if cut:
        warnings.warn(
            f"{cut} prompt(s) longer than {room} tokens lost their start to fit {lm.name}'s context with "
            f"{max_new_tokens} new tokens.",
            UserWarning,
            stacklevel=2,
        )
    return answers


def free_answers(lm: LanguageModel, questions: Sequence[str], *, max_new_tokens: int = 48) -> list[str]:
    """What ``lm`` says when asked, as the suites score free answers: a model that answers through a system of its own
    (``lm.answerer(questions, max_new_tokens=...)``, e.g. a boxed system's scoring hook: router, workers, composer,
    output filter) gives that system's answers, drafted at the same length; any other model its :func:`greedy_answers`. Without this, a box's free answers would be the model's
    continuation of the routed prompt (for a refused question, a placeholder), not what the box says."""
    answerer = getattr(lm, "answerer", None)
    if answerer is None:
        return greedy_answers(lm, questions, max_new_tokens=max_new_tokens)
    if isinstance(questions, str):
        raise InvalidInputError("free_answers takes a list of questions, not one string.")
    answers = list(answerer(list(questions), max_new_tokens=max_new_tokens))  # the same length as any other model
    if len(answers) != len(questions):
        raise InvalidInputError(f"{lm.name}'s answerer gave {len(answers)} answers to {len(questions)} questions.")
    return answers
