"""Scope expansion of a delete: the near-duplicates, quotations and paraphrases of the requested documents that the
store already holds, with their scores, and which of them a threshold policy accepts.

Deleting a document leaves its copies behind (the decontamination problem: Lee et al. 2022, "Deduplicating
Training Data Makes Language Models Better"; SILO's opt-out, Min et al. 2023). Three signals, each with its own
threshold in :class:`ExpansionPolicy`:

- **near-duplicate**: Jaccard resemblance of word 3-shingle sets, ``|A & B| / |A | B|`` (Broder 1997). Candidates
  come from MinHash LSH (``datasketch.MinHashLSH``: ``b`` bands of ``r`` rows, a pair with resemblance ``s``
  collides with probability ``1 - (1 - s^r)^b``, Leskovec, Rajaraman & Ullman, *Mining of Massive Datasets*,
  Sec. 3.4) at the policy's threshold; the score is the exact Jaccard of the shingle sets.
- **quotation**: containment of a passage of the requested document in the candidate, ``max_p |S(p) & S(B)| /
  |S(p)|`` over its passages ``p`` (sentences, and clauses between commas, of at least four words) that carry one
  of its anchors (below) (Broder 1997's containment, per passage, so a quoted sentence or clause inside a long
  text scores 1, while a clause of boilerplate that many documents share does not count). Candidates: the keyword
  index's best matches for each passage.
- **paraphrase**: cosine similarity of the embeddings (unit vectors: the inner product), *and* the candidate must
  keep the requested document's anchors -- a paraphrase restates the same facts, so it keeps the entities; a
  document in the same template about someone else shares the words but not the entities. Anchors: the words of
  the requested document that carry a digit or start with a capital letter other than at the start of a sentence
  (names, places, numbers, symbols), lower-cased and without stop words; when there are none, its ``anchors``
  terms with the fewest documents in the store. Anchor overlap: the share of them found in the candidate.
  Candidates: the vector index's nearest neighbours.
- **entity-anchored paraphrase**: the candidate holds at least ``entity_overlap`` of the requested document's
  anchors *and* at least ``entity_anchors`` of them, names as written (a capitalised anchor matches only capitalised:
  "May" the month is not "may", "New York" not "new"), at a cosine of at least ``entity_cosine`` (a floor well below
  ``cosine``). A restatement that keeps every name, place and number but changes the sentence structure (a relative
  clause for "Born in ... in the city of ...") sits at a lower cosine under a mean-pooled sentence embedding,
  which weighs the template's function words; the planted paraphrases of the corpus span cosines 0.74-0.85 across
  seeds while holding all of their five to eight anchors, and a cosine threshold set at the calibration seed's
  lowest paraphrase (0.79) missed held-out ones at 0.75-0.78. The hard negatives that share a template hold at
  most two of the anchors (a person's name; a country that contains its capital's name): several shared named
  entities are what identifies a copy of these facts, the cosine floor only keeps out documents that mention the
  same entities about something else entirely. Only for a document that has anchors of its own (not the
  rarest-terms fallback).

A candidate is accepted when any signal passes its threshold; its ``kind`` is the first that passes, in the order
above. Everything examined is returned with all three scores, so an operator can see what was left out and why.

**Other owners' documents are never accepted by the policy** (``other_owners=False``, the default): a candidate that
belongs to a named owner other than the requested document's is returned with its scores, the kind it would have had
and ``held_back`` saying why, for an operator to accept by id; only unowned copies and the requester's own documents
go with a threshold policy. Shared common entities (a city, a company, a date) are not proof that someone else's
document restates the requester's data, and a delete under the policy must not remove data nobody asked to delete.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from obliviate.errors import InvalidInputError, UnknownIdsError
from obliviate.retrieval.bm25 import STOP_WORDS, tokenize
from obliviate.retrieval.minhash import minhash_of, shingles

__all__ = [
    "ExpansionPolicy",
    "Candidate",
    "Expansion",
    "expand",
    "sentences",
    "passages",
    "containment",
    "jaccard",
    "anchors_of",
]

_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\"")
_CLAUSE = re.compile(r"[.!?;:,\"()]")
_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ExpansionPolicy:
    """Thresholds (see the module docstring). The defaults are those ``benchmarks/retrieval_expand.py`` chose on the
    planted corpus of seed 0 with all-MiniLM-L6-v2 (highest recall at precision >= 0.9; the entity rule's three in
    a second stage, ties to the largest margin); its results on seeds 1-4 are in ``benchmarks/RESULTS.md``.
    ``cosine`` and ``entity_cosine`` are specific to that embedder: recalibrate for another."""

    jaccard: float = 0.4
    containment: float = 0.8
    cosine: float = 0.78
    anchor_overlap: float = 0.5
    anchors: int = 4
    depth: int = 20
    entity_overlap: float = 0.8
    entity_anchors: int = 3
    entity_cosine: float = 0.4
    other_owners: bool = False  # accept candidates that belong to another named owner (see the module docstring)

    def __post_init__(self) -> None:
        for name in ("jaccard", "containment", "cosine", "anchor_overlap", "entity_overlap", "entity_cosine"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}.")
        if not isinstance(self.other_owners, bool):
            raise InvalidInputError(f"other_owners must be True or False, got {self.other_owners!r}.")
        for name in ("anchors", "depth", "entity_anchors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")


@dataclass(frozen=True)
class Candidate:
    id: int
    of: int  # the requested document it copies
    jaccard: float
    containment: float
    cosine: float
    anchor_overlap: float
    kind: str | None  # "near-duplicate", "quotation", "paraphrase", or None when no threshold passed
    text: str
    anchors_matched: int = 0  # how many of the requested document's anchors the candidate holds
    held_back: str | None = None  # why a candidate that passed a threshold is not accepted (another owner's document)

    @property
    def accepted(self) -> bool:
        return self.kind is not None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "of": self.of,
            "kind": self.kind,
            "jaccard": round(self.jaccard, 4),
            "containment": round(self.containment, 4),
            "cosine": round(self.cosine, 4),
            "anchor_overlap": round(self.anchor_overlap, 4),
            "anchors_matched": self.anchors_matched,
            "held_back": self.held_back,
            "text": self.text[:200],
        }


@dataclass
class Expansion:
    requested: list[int]
    policy: ExpansionPolicy
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def accepted_ids(self) -> list[int]:
        return sorted({c.id for c in self.candidates if c.accepted})

    @property
    def all_ids(self) -> list[int]:
        """The requested ids and the accepted ones: what a delete under the policy removes."""
        return sorted(set(self.requested) | set(self.accepted_ids))


def sentences(text: str) -> list[str]:
    """``text`` split at sentence ends and quotation marks, pieces of at least three words."""
    return [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= 3]


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def passages(text: str) -> list[str]:
    """The sentences of ``text`` and its clauses (between punctuation) of at least four words."""
    pieces = sentences(text) + [c.strip() for c in _CLAUSE.split(text)]
    return list(dict.fromkeys(p for p in pieces if len(p.split()) >= 4))


def containment(text: str, other: str, *, anchors: Sequence[str] = ()) -> float:
    """The largest share of a passage's shingles of ``text`` that ``other`` contains, over the passages that hold one
    of ``anchors`` (all passages when none are given); see the module docstring."""
    target = shingles(other)
    wanted = set(anchors)
    best = 0.0
    for passage in passages(text) or [text]:
        if wanted and not wanted & set(tokenize(passage)):
            continue
        s = shingles(passage)
        if s:
            best = max(best, len(s & target) / len(s))
    return best


def anchors_of(text: str) -> list[str]:
    """Words of ``text`` with a digit, or capitalised other than at a sentence start (lower-cased, no stop words)."""
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?;:])\s+|\"", text):
        words = _TOKEN.findall(sentence)
        for k, word in enumerate(words):
            if any(ch.isdigit() for ch in word) or (k > 0 and word[0].isupper()):
                token = word.lower()
                if token not in STOP_WORDS and token not in out:
                    out.append(token)
    return out


def _capitalised_forms(text: str) -> dict[str, str]:
    """The capitalised anchors of ``text`` (no digit), lower-cased -> as written."""
    forms: dict[str, str] = {}
    for sentence in re.split(r"(?<=[.!?;:])\s+|\"", text):
        words = _TOKEN.findall(sentence)
        for k, word in enumerate(words):
            if k > 0 and word[0].isupper() and not any(ch.isdigit() for ch in word):
                forms.setdefault(word.lower(), word)
    return forms


def _anchors(store, text: str, n: int) -> list[str]:
    """:func:`anchors_of`, or when it finds none, the ``n`` terms of ``text`` with the fewest documents in the store."""
    found = anchors_of(text)
    if found:
        return found
    terms = sorted(set(tokenize(text)), key=lambda t: (len(store.keywords.postings.get(t, ())), t))
    return terms[:n]


def expand(store, ids, *, policy: ExpansionPolicy | None = None) -> Expansion:
    """The candidates related to the documents ``ids`` of ``store`` (a :class:`DocumentStore`), scored and judged
    by ``policy``. Unknown ids are :class:`UnknownIdsError`; the store is not changed."""
    policy = policy or ExpansionPolicy()
    requested = sorted({int(i) for i in ids})
    if not requested:
        raise InvalidInputError("name at least one document id to expand.")
    docs = {d.id: d for d in store.documents(requested)}
    missing = [i for i in requested if i not in docs]
    if missing:
        raise UnknownIdsError(missing, where="the document store")
    lsh = store.lsh(policy.jaccard)
    best: dict[int, Candidate] = {}
    for doc_id in requested:
        text = docs[doc_id].text
        pool: set[int] = set(lsh.query(minhash_of(text)))
        for passage in passages(text) or [text]:
            pool |= {d for d, _ in store.keywords.search(passage, policy.depth)}
        vector = store.vector_of(doc_id)
        pool |= {d for d, _ in store.vectors.search(vector, policy.depth + 1)}
        pool -= set(requested)
        if not pool:
            continue
        anchors = _anchors(store, text, policy.anchors)
        named = bool(anchors_of(text))  # the entity rule needs real anchors, not the rarest-terms fallback
        cased = _capitalised_forms(text)  # the entity rule matches a name as written ("May" the month, not "may")
        mine = shingles(text)
        for other in store.documents(pool):
            cosine = float(np.dot(vector, store.vector_of(other.id)))
            words = set(tokenize(other.text))
            matched = sum(a in words for a in anchors)
            overlap = matched / len(anchors) if anchors else 0.0
            as_written = set(_TOKEN.findall(other.text))
            entities = sum(a in words and (a not in cased or cased[a] in as_written) for a in anchors)
            j = jaccard(mine, shingles(other.text))
            c = containment(text, other.text, anchors=anchors)
            kind = None
            if j >= policy.jaccard:
                kind = "near-duplicate"
            elif c >= policy.containment:
                kind = "quotation"
            elif (cosine >= policy.cosine and overlap >= policy.anchor_overlap) or (
                named
                and entities >= policy.entity_overlap * len(anchors)
                and entities >= policy.entity_anchors
                and cosine >= policy.entity_cosine
            ):
                kind = "paraphrase"
            held_back = None
            if kind is not None and not policy.other_owners and other.owner not in (None, docs[doc_id].owner):
                # the other owner is not named: the reason travels into the requester's certificate
                held_back = f"{kind}, but another owner's document: an operator deletes it by id if it is a copy"
                kind = None
            cand = Candidate(other.id, doc_id, j, c, cosine, overlap, kind, other.text, matched, held_back)
            held = best.get(other.id)
            if held is None or (cand.accepted, cand.jaccard + cand.containment + cand.cosine) > (
                held.accepted,
                held.jaccard + held.containment + held.cosine,
            ):
                best[other.id] = cand
    ordered = sorted(best.values(), key=lambda c: (not c.accepted, -(c.jaccard + c.containment + c.cosine), c.id))
    return Expansion(requested, policy, ordered)

