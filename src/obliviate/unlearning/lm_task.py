"""The task a language-model unlearning method reads (:class:`LMUnlearnTask`) and its batches.

It lives in ``unlearning`` beside the classifier's :class:`~obliviate.unlearning.base.UnlearnTask`, so
that :func:`obliviate.unlearning.execution.build_task` builds either family's task without importing the
methods (``empirical``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from obliviate.errors import InvalidInputError
from obliviate.lm.batches import IGNORE_INDEX, answers_of, encode_qa, qa_items
from obliviate.training.loop import minibatches
from obliviate.unlearning.base import UnlearnTask

__all__ = ["LMUnlearnTask", "DEFAULT_IDK_ANSWERS", "DOCUMENT", "Batch", "encode_documents"]

DOCUMENT = "document"
"""The batch variant holding each item as one plain-text document (``question\\nanswer``, no chat
template, every real token counted): the corpus layout of WMDP's RMU (plain documents)."""

DEFAULT_IDK_ANSWERS: tuple[str, ...] = (
    "I don't know.",
    "I'm not sure.",
    "I have no information about that.",
    "I can't answer that.",
    "That is not something I know about.",
    "I'm afraid I don't have that information.",
    "I don't have any details on that.",
    "I cannot recall that.",
    "I have no idea.",
    "Sorry, I don't know the answer to that.",
)
"""Refusals for IdkDPO when the data brings no bank (TOFU ships ``idontknow.jsonl``; these are ours)."""

Batch = dict[str, torch.Tensor]


@dataclass
class LMUnlearnTask(UnlearnTask):
    """What an LM method may read: the frozen ``original`` LanguageModel, the ``forget`` and
    ``retain`` QA sets, the ``seed`` and the "I don't know" answers. Counting (steps, examples,
    distinct items read) and the divergence check are :class:`UnlearnTask`'s."""

    idk_answers: tuple[str, ...] = DEFAULT_IDK_ANSWERS
    max_length: int | None = None

    @property
    def num_classes(self) -> int:  # pragma: no cover - a classifier notion
        raise InvalidInputError("a language-model task has no class count.")

    def batches(  # type: ignore[override]
        self,
        which: Literal["forget", "retain"] | Any,
        batch_size: int,
        *,
        generator: torch.Generator,
        shuffle: bool = True,
        answers: Sequence[str] = ("answer",),
    ) -> Iterator[dict[str, Batch]]:
        """One seeded pass over a QA set: per step ``{variant: encode_qa batch}`` for each answer
        variant (``"answer"``, ``"paraphrased_answer"``, ``"idk"``, or :data:`DOCUMENT`: the item as
        one plain-text document, :func:`encode_documents`), all on the same items, in the same order;
        records the items read."""
        data = self.forget if which == "forget" else self.retain if which == "retain" else which
        items = qa_items(data)
        if not items:
            raise InvalidInputError(f"the {which if isinstance(which, str) else 'given'} set has no items.")
        texts = {
            v: answers_of(items, "answer" if v == DOCUMENT else v, idk_answers=self.idk_answers, generator=generator)
            for v in answers
        }
        for idx in minibatches(len(items), batch_size, generator=generator, shuffle=shuffle):
            chosen = [items[i] for i in idx.tolist()]
            self._touched.update(int(item.id) for item in chosen)
            questions = [item.question for item in chosen]
            out = {}
            for v in answers:
                if v == DOCUMENT:
                    docs = [f"{q}\n{texts[v][i]}" for q, i in zip(questions, idx.tolist())]
                    out[v] = encode_documents(self.original, docs, max_length=self.max_length)
                    continue
                out[v] = encode_qa(self.original, questions, [texts[v][i] for i in idx.tolist()], max_length=self.max_length)
            yield out

    def cycle(self, which: str, batch_size: int, *, generator: torch.Generator, answers: Sequence[str] = ("answer",)) -> Iterator[dict[str, Batch]]:
        """Endless seeded passes (a fresh shuffle each pass)."""
        while True:
            yield from self.batches(which, batch_size, generator=generator, answers=answers)


def encode_documents(lm: Any, texts: Sequence[str], *, max_length: int | None = None) -> Batch:
    """Plain texts as one right-padded batch (the tokenizer's own special tokens, no chat template):
    ``input_ids``, ``attention_mask`` and ``labels`` (the ids, -100 on padding). A text longer than
    ``max_length`` (default ``lm.max_length``) keeps its start, as WMDP's tokenizer call truncates."""
    texts = list(texts)
    if not texts:
        raise InvalidInputError("encode_documents needs at least one text.")
    limit = int(max_length if max_length is not None else getattr(lm, "max_length", 0) or 0)
    if limit < 2:
        raise InvalidInputError(f"max_length must be at least 2 tokens, got {limit}; set it on the LanguageModel.")
    tok = lm.tokenizer
    rows = [list(tok(t)["input_ids"])[:limit] for t in texts]
    if any(not r for r in rows):
        raise InvalidInputError("a document has no tokens; give non-empty texts.")
    pad = next((int(v) for v in (tok.pad_token_id, tok.eos_token_id) if v is not None), 0)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, IGNORE_INDEX)}
