"""A retrieval-augmented answerer: retrieve ``k`` documents from a :class:`DocumentStore`, put them in the prompt,
answer greedily (Lewis et al. 2020, "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks", in its
simplest in-context form: the retrieved passages are concatenated before the question, Ram et al. 2023,
"In-Context Retrieval-Augmented Language Models").

With a chat model (SmolLM2-135M-Instruct) the documents go in the system turn, each in its own numbered block, with
the instruction to answer from them only; the question is the user turn. Deleting a document from the store
takes it out of every later prompt: what the answerer can still say about it comes from the model's weights
(``closed_book``: the same model with no documents) or from a copy the delete did not reach.

An optional output filter (:class:`obliviate.retrieval.attacks.OutputFilter`) post-processes each answer given the
documents that were in its context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from obliviate.errors import InvalidInputError
from obliviate.models.lm import LanguageModel

__all__ = ["RAGAnswerer", "RAGAnswer", "SYSTEM_PROMPT", "build_prompt"]

SYSTEM_PROMPT = (
    "You answer questions using only the documents below. Answer in one short sentence. If the documents do not "
    "contain the answer, say: I don't know."
)


@dataclass
class RAGAnswer:
    question: str
    text: str  # what the user sees (after the output filter, when there is one)
    raw: str  # the model's own answer
    context_ids: list[int]
    context: list[str]
    redactions: list[str] = field(default_factory=list)


def build_prompt(lm: LanguageModel, question: str, documents: Sequence[str], *, system: str = SYSTEM_PROMPT) -> str:
    """The prompt text: documents numbered in the system turn and the question as the user turn (chat template),
    or ``Documents: ... Question: ... Answer:`` for a model without one. No documents: the question alone."""
    if not documents:
        return lm.prompt(question)
    blocks = "\n".join(f"[{i}] {doc}" for i, doc in enumerate(documents, start=1))
    if getattr(lm, "has_chat_template", False):
        return lm.tokenizer.apply_chat_template(
            [{"role": "system", "content": f"{system}\n\nDocuments:\n{blocks}"}, {"role": "user", "content": question}],
            tokenize=False,
            add_generation_prompt=True,
        )
    return f"{system}\nDocuments:\n{blocks}\nQuestion: {question}\nAnswer:"


class _Prompted(LanguageModel):
    """The same model whose ``prompt`` is the identity: the RAG prompt is built before generation."""

    def prompt(self, question: str) -> str:
        return question


class RAGAnswerer:
    """Answers questions from the ``k`` best documents of ``store`` (``mode``: hybrid, vector or keyword).

    ``k=0`` answers closed-book (the model alone), the reference for what the weights already know."""

    def __init__(
        self,
        lm: LanguageModel,
        store,
        *,
        k: int = 3,
        mode: str = "hybrid",
        max_new_tokens: int = 32,
        batch_size: int = 8,
        output_filter=None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k must be a whole number >= 0 (documents per question), got {k!r}.")
        self.lm, self.store, self.k, self.mode = lm, store, k, mode
        self.max_new_tokens, self.batch_size = int(max_new_tokens), int(batch_size)
        self.output_filter = output_filter
        self._generator = _Prompted(model=lm.model, tokenizer=lm.tokenizer, name=lm.name, max_length=lm.max_length)

    def retrieve(self, question: str):  # noqa: ANN201 - list[Hit]
        return self.store.search(question, k=self.k, mode=self.mode) if self.k else []

    def answer(self, questions: Sequence[str]) -> list[RAGAnswer]:
        from obliviate.lm.generate import greedy_answers

        if isinstance(questions, str):
            raise InvalidInputError("answer takes a list of questions, e.g. answer(['Where was Ada born?']).")
        hits = [self.retrieve(q) for q in questions]
        prompts = [build_prompt(self.lm, q, [h.text for h in hs]) for q, hs in zip(questions, hits)]
        raw = greedy_answers(self._generator, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        out = []
        for question, hs, text in zip(questions, hits, raw):
            shown, redactions = text, []
            if self.output_filter is not None:
                shown, redactions = self.output_filter(question, text, hs)
            out.append(RAGAnswer(question, shown, text, [h.id for h in hs], [h.text for h in hs], redactions))
        return out
