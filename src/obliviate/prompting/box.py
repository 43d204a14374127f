"""A boxed system: only input and output are exposed; a router, workers, a composer and an output filter.

The seed's third way to forget by asking. A query goes through four swappable parts:

1. a **router** (:class:`EmbeddingRouter`) scores how close the query is to the forget scope and picks
   a worker: the scope's worker at or above ``threshold`` in [0, 1], the default worker below it;
2. a **worker** answers. Workers share the box's network and differ in what it is shown:
   :class:`OriginalWorker` sees the conversation as asked; :class:`RefusingWorker` *lacks the
   knowledge* in the only sense a shared network allows: the question never reaches the model (it
   sees a fixed placeholder turn) and its text answer is a fixed refusal, produced without a forward
   pass. Multiple-choice log-likelihoods through the box are then the model's preference among the
   choices with no question, which carries no information about the right one;
3. a **composer** (:class:`TrimComposer`) drafts the final text from the worker's draft;
4. an **output filter** (:class:`TermFilter`) blocks a final text that names forget-set content and
   returns the refusal instead.

:class:`BoxedSystem` exposes ``answer(question) -> text`` and, for the evaluation harness, the
scoring hook :meth:`BoxedSystem.scoring_model`: a :class:`~obliviate.prompting.wrapped.PromptedModel`
whose prompts are routed per conversation, so ``score_choices`` conditions every choice's
log-likelihood on the worker the router picked. The router reads every user turn of a conversation
(the highest score decides), so forget content hidden in earlier turns (many-shot context, multi-turn
extraction) routes the whole conversation. Nothing about the forget scope is ever put in the
model's context, so asking the box for its instructions cannot reveal it (no Streisand effect).

The router plays the part of the prompt classifier of Liu et al. (2024, "Large Language Model
Unlearning via Embedding-Corrupted Prompts": a classifier on the prompt decides whether the forget
scope is touched, before the model runs) with the simplest classifier: cosine similarity of sentence embeddings
(all-MiniLM-L6-v2, :mod:`obliviate.retrieval.embed`) to the forget description and exemplars,
optionally against retain exemplars (see :class:`EmbeddingRouter`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obliviate.errors import InvalidInputError
from obliviate.prompting.base import PromptingMethod, check_description, forget_terms
from obliviate.prompting.wrapped import PromptedModel, PromptPolicy
from obliviate.unlearning.registry import register

__all__ = [
    "REFUSAL",
    "WITHHELD",
    "MissingWorkerError",
    "Router",
    "EmbeddingRouter",
    "calibrate_threshold",
    "Worker",
    "OriginalWorker",
    "RefusingWorker",
    "Composer",
    "TrimComposer",
    "OutputFilter",
    "TermFilter",
    "BoxPolicy",
    "BoxedSystem",
    "BoxedUnlearning",
    "despell",
]

REFUSAL = "I'm sorry, I can't help with that."
WITHHELD = "(This question was withheld.)"


class MissingWorkerError(InvalidInputError):
    """The router names a worker the box does not have."""


_JOINERS = "-._/\u00b7\u2010\u2011\u2012\u2013\u2014"  # hyphens, dot, underscore, slash, middle dot, dashes
_SPELLED = re.compile(rf"(?<!\w)[A-Za-z](?:[{_JOINERS}][A-Za-z])+(?!\w)")
_SPACED = re.compile(r"(?<!\w)[A-Za-z](?: [A-Za-z]){3,}(?!\w)")  # four or more single letters between spaces


def despell(text: str) -> str:
    """``text`` with words spelled letter by letter joined back (``"S-H-A-N-N-O-N"`` -> ``"SHANNON"``;
    hyphens, dashes, dots, underscores, slashes or middle dots between single letters, or runs of four or more
    single letters between spaces: ``"S H A N N O N"``). The router and the term filter read text through it:
    the authors suite's "spelled" attack got every forget question past both. Shorter spaced runs are left
    alone (ordinary text has "a I" and option lists like "A B C"); so are spellings by syllable ("Sha-nnon")."""
    text = _SPELLED.sub(lambda m: re.sub(f"[{_JOINERS}]", "", m.group(0)), text)
    return _SPACED.sub(lambda m: m.group(0).replace(" ", ""), text)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        raise InvalidInputError(f"the router threshold must be a number in [0, 1], got {threshold!r}.")
    return float(threshold)


# ------------------------------------------------------------------------------------------- router
class Router:
    """Picks a worker for a conversation from its user turns; ``workers()`` names those it can pick."""

    def route(self, user_texts: Sequence[str]) -> str:
        raise NotImplementedError

    def workers(self) -> set[str]:
        raise NotImplementedError


class EmbeddingRouter(Router):
    """Routes by embedding similarity to the forget scope.

    ``score(text)`` in [0, 1]: with no ``retain_exemplars``, ``max(0, max_j cos(e(text), e(f_j)))``
    over the forget description and ``exemplars`` ``f_j``; with them, the nearest-neighbour margin
    ``(1 + max_j cos(e, e(f_j)) - max_k cos(e, e(r_k))) / 2`` clipped to [0, 1] (0.5: as close to the
    forget scope as to the retained knowledge). A conversation's score is its highest user turn's;
    at or above ``threshold`` it goes to ``scope_worker``, else to ``default_worker``.
    """

    def __init__(
        self,
        description: str,
        *,
        exemplars: Sequence[str] = (),
        retain_exemplars: Sequence[str] = (),
        embedder: Any = "minilm",
        threshold: float = 0.5,
        scope_worker: str = "refuse",
        default_worker: str = "original",
    ) -> None:
        from obliviate.retrieval.embed import make_embedder

        self.description = check_description(description, where="EmbeddingRouter")
        self.threshold = _check_threshold(threshold)
        self.embedder = make_embedder(embedder)
        self.scope_worker, self.default_worker = str(scope_worker), str(default_worker)
        self._forget = self.embedder.embed([self.description, *[str(e) for e in exemplars if str(e).strip()]])
        retain = [str(e) for e in retain_exemplars if str(e).strip()]
        self._retain = self.embedder.embed(retain) if retain else None
        self._cache: dict[str, float] = {}

    def __repr__(self) -> str:
        n_r = 0 if self._retain is None else len(self._retain)
        return (
            f"EmbeddingRouter({self.embedder.name}, threshold={self.threshold:g}, forget exemplars="
            f"{len(self._forget) - 1}, retain exemplars={n_r})"
        )

    def workers(self) -> set[str]:
        return {self.scope_worker, self.default_worker}

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """The scores of ``texts`` (embedded in one batch; remembered per text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            e = self.embedder.embed([despell(t) for t in todo])
            f = (e @ self._forget.T).max(axis=1)
            if self._retain is None:
                s = np.maximum(f, 0.0)
            else:
                s = np.clip((1.0 + f - (e @ self._retain.T).max(axis=1)) / 2.0, 0.0, 1.0)
            self._cache.update({t: float(v) for t, v in zip(todo, s)})
        return np.asarray([self._cache[t] for t in texts], dtype=np.float64)

    def score(self, user_texts: Sequence[str]) -> float:
        texts = [user_texts] if isinstance(user_texts, str) else list(user_texts)
        return float(self.scores(texts).max()) if texts else 0.0

    def route(self, user_texts: Sequence[str]) -> str:
        return self.scope_worker if self.score(user_texts) >= self.threshold else self.default_worker


def calibrate_threshold(router: EmbeddingRouter, in_scope: Sequence[str], out_of_scope: Sequence[str]) -> float:
    """The threshold that best separates ``in_scope`` from ``out_of_scope`` texts (validation questions):
    the midpoint between consecutive sorted scores maximising balanced accuracy (ties: the highest,
    which routes fewer retained questions away)."""
    if not in_scope or not out_of_scope:
        raise InvalidInputError("calibrate_threshold needs in-scope and out-of-scope texts (validation questions).")
    pos, neg = router.scores(list(in_scope)), router.scores(list(out_of_scope))
    values = np.unique(np.concatenate([pos, neg]))
    cuts = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2, [min(1.0, values[-1] + 1e-6)]])
    best, best_t = -1.0, 0.5
    for t in cuts:
        bal = ((pos >= t).mean() + (neg < t).mean()) / 2
        if bal >= best:
            best, best_t = bal, float(t)
    return float(np.clip(best_t, 0.0, 1.0))


# ------------------------------------------------------------------------------------------ workers
class Worker:
    """What the model is shown for a conversation (``messages``) and, optionally, a fixed text answer
    given without running the model (``fixed_answer``; None: generate)."""

    name = "worker"

    def messages(self, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        return conversation

    def fixed_answer(self, question: str) -> str | None:
        return None


class OriginalWorker(Worker):
    """The model as it is, shown the conversation as asked."""

    name = "original"


class RefusingWorker(Worker):
    """Never shows the question to the model (a placeholder user turn instead) and answers ``refusal``."""

    name = "refuse"

    def __init__(self, refusal: str = REFUSAL, *, placeholder: str = WITHHELD) -> None:
        if not str(refusal).strip() or not str(placeholder).strip():
            raise InvalidInputError("the refusing worker needs a non-empty refusal and placeholder text.")
        self.refusal, self.placeholder = str(refusal), str(placeholder)

    def messages(self, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.placeholder}]

    def fixed_answer(self, question: str) -> str | None:
        return self.refusal


# ---------------------------------------------------------------------------- composer and filter
class Composer:
    """Drafts the final answer from the worker's draft."""

    def compose(self, question: str, draft: str, worker: str) -> str:
        return draft


class TrimComposer(Composer):
    """The draft's whitespace normalised and cut at ``max_chars`` (at a sentence end when there is one)."""

    def __init__(self, max_chars: int = 400) -> None:
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise InvalidInputError(f"max_chars must be a positive integer, got {max_chars!r}.")
        self.max_chars = max_chars

    def compose(self, question: str, draft: str, worker: str) -> str:
        text = re.sub(r"\s+", " ", draft).strip()
        if len(text) <= self.max_chars:
            return text
        cut = text[: self.max_chars]
        end = cut.rfind(". ")
        return cut[: end + 1] if end > 0 else cut


class OutputFilter:
    """Checks a final answer: ``blocked(text)`` lists what it found (empty: the text passes)."""

    def blocked(self, text: str) -> list[str]:
        return []


class TermFilter(OutputFilter):
    """Blocks answers naming forget-set content: ``terms`` matched as whole words, case-insensitively
    (names: "iron"; a multi-word term's words joined by any white space or none), and ``exact_terms`` case-sensitively (symbols: "Fe" must not match "fe")."""

    def __init__(self, terms: Sequence[str] = (), *, exact_terms: Sequence[str] = ()) -> None:
        self.terms = sorted({str(t).strip() for t in terms if str(t).strip()})
        self.exact_terms = sorted({str(t).strip() for t in exact_terms if str(t).strip()})
        if not self.terms and not self.exact_terms:
            raise InvalidInputError("the output filter needs at least one forget term to block.")
        # the words of a term may be joined by any run of white space or none ("SHANNONMORRISON": a name spelled
        # letter by letter with single spaces loses its word break in despell)
        alt = "|".join(re.escape(t).replace("\\ ", r"\s*") for t in sorted(self.terms, key=len, reverse=True))
        alt_exact = "|".join(re.escape(t) for t in sorted(self.exact_terms, key=len, reverse=True))
        self._re = re.compile(rf"(?<!\w)(?:{alt})(?!\w)", re.IGNORECASE) if alt else None
        self._re_exact = re.compile(rf"(?<!\w)(?:{alt_exact})(?!\w)") if alt_exact else None

    def blocked(self, text: str) -> list[str]:
        found = []
        for candidate in dict.fromkeys((text, despell(text))):  # spelled-out names as well (see despell)
            for rx in (self._re, self._re_exact):
                if rx is not None:
                    found += [m.group(0) for m in rx.finditer(candidate)]
        return found


# ---------------------------------------------------------------------------------------- the box
class BoxPolicy(PromptPolicy):
    """Routes each conversation (by its user turns) and shows the model what the chosen worker shows."""

    name = "boxed"

    def __init__(self, router: Router, workers: Mapping[str, Worker]) -> None:
        self.router, self.workers = router, dict(workers)

    def __repr__(self) -> str:
        return f"BoxPolicy({self.router!r}, workers={sorted(self.workers)})"

    def worker_for(self, conversation: Sequence[dict[str, str]]) -> Worker:
        return self.workers[self.router.route([m["content"] for m in conversation if m["role"] == "user"])]

    def rewrite(self, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        return self.worker_for(conversation).messages(conversation)


class BoxedSystem:
    """The box (see the module docstring). ``workers`` maps names to :class:`Worker` objects and must
    hold every worker the router can pick (else :class:`MissingWorkerError`)."""

    def __init__(
        self,
        lm: Any,
        *,
        router: Router,
        workers: Mapping[str, Worker] | None = None,
        composer: Composer | None = None,
        output_filter: OutputFilter | None = None,
        refusal: str = REFUSAL,
        max_new_tokens: int = 32,
    ) -> None:
        from obliviate.models.lm import LanguageModel

        if not isinstance(lm, LanguageModel):
            raise InvalidInputError(f"the box runs an obliviate LanguageModel, got {type(lm).__name__}.")
        if not isinstance(router, Router):
            raise InvalidInputError(f"router must be a Router (e.g. EmbeddingRouter), got {type(router).__name__}.")
        workers = (
            dict(workers) if workers is not None else {"original": OriginalWorker(), "refuse": RefusingWorker(refusal)}
        )
        missing = sorted(router.workers() - set(workers))
        if missing:
            raise MissingWorkerError(
                f"the router sends queries to worker(s) {missing}, which the box does not have (it has "
                f"{sorted(workers)}); add them to workers= or route to an existing one."
            )
        bad = [k for k, w in workers.items() if not isinstance(w, Worker)]
        if bad:
            raise InvalidInputError(f"workers {bad} are not Worker objects (OriginalWorker, RefusingWorker, ...).")
        self.router, self.workers = router, workers
        self.composer = composer or TrimComposer()
        self.output_filter = output_filter or OutputFilter()
        self.refusal = str(refusal)
        self.max_new_tokens = int(max_new_tokens)
        self._model = PromptedModel.wrap(lm, BoxPolicy(router, workers))
        self._model.answerer = self.answer_many  # the suites' free answers are the box's own (lm.generate.free_answers)

    def __repr__(self) -> str:
        return (
            f"BoxedSystem({self.router!r}, workers={sorted(self.workers)}, filter={type(self.output_filter).__name__})"
        )

    def scoring_model(self) -> PromptedModel:
        """The scoring hook: a LanguageModel whose prompts are routed as the box routes them."""
        return self._model

    def answer(self, question: str) -> str:
        """The box's answer to one question."""
        return self.answer_many([question])[0]

    def answer_many(self, questions: Sequence[str], *, max_new_tokens: int | None = None) -> list[str]:
        """Answers to ``questions``: routed, drafted by the workers (generating ones in one batch, at most
        ``max_new_tokens`` new tokens: the box's own limit when None), composed, filtered."""
        from obliviate.lm.generate import greedy_answers

        if isinstance(questions, str):
            raise InvalidInputError("answer_many takes a list of questions; use answer() for one.")
        policy: BoxPolicy = self._model.policy  # type: ignore[assignment]
        drafts: list[str | None] = []
        chosen: list[str] = []
        for q in questions:
            if not isinstance(q, str):
                raise InvalidInputError(f"a question must be a string, got {type(q).__name__}.")
            worker = policy.worker_for([{"role": "user", "content": q}])
            chosen.append(worker.name)
            drafts.append(worker.fixed_answer(q))
        todo = [i for i, d in enumerate(drafts) if d is None]
        if todo:
            limit = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
            generated = greedy_answers(self._model, [questions[i] for i in todo], max_new_tokens=limit)
            for i, text in zip(todo, generated):
                drafts[i] = text
        out = []
        for q, d, w in zip(questions, drafts, chosen):
            text = self.composer.compose(q, d or "", w)
            out.append(self.refusal if self.output_filter.blocked(text) else text)
        return out


@register
class BoxedUnlearning(PromptingMethod):
    """The boxed system as a method (see the module docstring): the router's forget exemplars are the
    forget set's questions and answers, its retain exemplars (when ``contrast``) the retain set's; the
    output filter blocks the forget subjects' names. ``threshold`` in [0, 1]; ``description``
    ``"auto"`` derives the scope from the forget set's owners.
    """

    name = "boxed"
    summary = "router + workers + composer + output filter around the unchanged model (no weights change)"

    @dataclass(frozen=True)
    class Config:
        description: str = "auto"
        threshold: float = 0.5
        embedder: str = "minilm"
        contrast: bool = True
        refusal: str = REFUSAL
        filter_names: bool = True

    def validate_config(self) -> None:
        super().validate_config()
        _check_threshold(self.config.threshold)
        if self.config.description != "auto":
            check_description(self.config.description, where=f"{self.name}.description")
        if not self.config.refusal.strip():
            raise InvalidInputError(f"{self.name}.refusal is empty; give the text the box answers out of scope.")

    def build(self, lm: Any, task: Any) -> PromptedModel:
        return self.build_box(lm, task).scoring_model()

    def build_box(self, lm: Any, task: Any) -> BoxedSystem:
        """The :class:`BoxedSystem` itself (``build`` returns its scoring hook)."""
        c = self.config
        description = self.description_for(task, c.description)
        forget_items = list(task.forget.items)
        exemplars = [t for it in forget_items for t in (it.question, it.answer)]
        retain = [t for it in task.retain.items for t in (it.question, it.answer)] if c.contrast else []
        router = EmbeddingRouter(
            description, exemplars=exemplars, retain_exemplars=retain, embedder=c.embedder, threshold=c.threshold
        )
        names = forget_terms(self.forget_owners(task)) if c.filter_names else []
        output_filter = TermFilter(names) if names else OutputFilter()
        return BoxedSystem(lm, router=router, output_filter=output_filter, refusal=c.refusal)
