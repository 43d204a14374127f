"""An exact BM25 keyword index that can forget: postings are removed when a document is deleted.

Score (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and Beyond", Eq. 3.15, in the
Lucene variant that Kamphuis et al. 2020, "Which BM25 Do You Mean?", Table 1, describe: the ``(k1 + 1)`` factor of
the numerator dropped, since it scales every score alike, and Lucene's non-negative idf)::

    score(D, Q) = sum_{t in Q} idf(t) * tf(t, D) / (tf(t, D) + k1 * (1 - b + b * |D| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with ``k1 = 1.5`` and ``b = 0.75`` (the defaults of ``bm25s``, whose ``method="lucene"`` computes the same
formula: ``bm25s.scoring._score_idf_lucene`` and ``_score_tfc_lucene``; ``tests/retrieval/test_retrieval_bm25.py``
compares the scores). ``bm25s`` itself is not used as the index: its index is a sparse matrix built once, and
deleting one document would mean rebuilding it; here a delete removes the document's postings in time
proportional to its number of distinct terms, and ``N``, ``df`` and ``avgdl`` follow at once, so the scores after
a delete are exactly those of an index built without the document.

Tokens: lower-cased ``\\w+`` runs, English stop words dropped, no stemming.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

__all__ = ["BM25Index", "tokenize", "STOP_WORDS"]

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into is "
    "it its me my no not of on or our she so than that the their them then there these they this those to too "
    "us was we were what when where which who whom why will with would you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` without stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


class BM25Index:
    """Postings ``term -> {doc id: term frequency}`` with document lengths; add, remove, search (see the module
    docstring). Document ids are the store's non-negative integer ids."""

    def __init__(self, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = float(k1), float(b)
        self.postings: dict[str, dict[int, int]] = {}
        self.terms: dict[int, tuple[str, ...]] = {}  # doc id -> its distinct terms (what a delete must visit)
        self.lengths: dict[int, int] = {}
        self._dl = np.zeros(1024, dtype=np.float32)  # doc length by id, for vectorised scoring
        self.total_length = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self.lengths

    def add(self, doc_id: int, text: str) -> None:
        doc_id = int(doc_id)
        if doc_id in self.lengths:
            self.remove([doc_id])
        tokens = tokenize(text)
        counts = Counter(tokens)
        for term, tf in counts.items():
            self.postings.setdefault(term, {})[doc_id] = tf
        self.terms[doc_id] = tuple(counts)
        self.lengths[doc_id] = len(tokens)
        if doc_id >= len(self._dl):
            grown = np.zeros(max(doc_id + 1, 2 * len(self._dl)), dtype=np.float32)
            grown[: len(self._dl)] = self._dl
            self._dl = grown
        self._dl[doc_id] = len(tokens)
        self.total_length += len(tokens)

    def remove(self, doc_ids: Iterable[int]) -> None:
        """Remove each document's postings; ids not in the index are ignored."""
        for doc_id in doc_ids:
            doc_id = int(doc_id)
            terms = self.terms.pop(doc_id, None)
            if terms is None:
                continue
            for term in terms:
                posting = self.postings[term]
                del posting[doc_id]
                if not posting:
                    del self.postings[term]
            self.total_length -= self.lengths.pop(doc_id)
            self._dl[doc_id] = 0.0

    def idf(self, term: str) -> float:
        n, df = len(self.lengths), len(self.postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """``(doc ids, scores)`` of every document that shares a term with ``query`` (unsorted)."""
        n = len(self.lengths)
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        avgdl = self.total_length / n if self.total_length else 1.0
        keys, parts = [], []
        for term, qtf in Counter(tokenize(query)).items():
            posting = self.postings.get(term)
            if not posting:
                continue
            ids = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tf = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            norm = self.k1 * (1.0 - self.b + self.b * self._dl[ids] / avgdl)
            keys.append(ids)
            parts.append(qtf * self.idf(term) * tf / (tf + norm))
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        if len(keys) == 1:
            return keys[0], parts[0]
        ids, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        return ids, np.bincount(inverse, weights=np.concatenate(parts), minlength=len(ids))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(doc id, score)`` pairs, best first (ties by the smaller id)."""
        ids, scores = self.scores(query)
        if len(ids) == 0:
            return []
        if len(ids) > k:
            top = np.argpartition(-scores, k - 1)[:k]
            ids, scores = ids[top], scores[top]
        order = np.lexsort((ids, -scores))
        return [(int(ids[i]), float(scores[i])) for i in order]

    # ------------------------------------------------------------------ snapshot
    def to_state(self) -> dict:
        """JSON-able state: each document's term counts (postings are rebuilt from them)."""
        docs = {}
        for doc_id, terms in self.terms.items():
            docs[str(doc_id)] = [[t, self.postings[t][doc_id]] for t in terms]
        return {"k1": self.k1, "b": self.b, "lengths": {str(d): n for d, n in self.lengths.items()}, "docs": docs}

    @classmethod
    def from_state(cls, state: dict) -> BM25Index:
        index = cls(k1=state["k1"], b=state["b"])
        for key, pairs in state["docs"].items():
            doc_id = int(key)
            for term, tf in pairs:
                index.postings.setdefault(term, {})[doc_id] = int(tf)
            index.terms[doc_id] = tuple(t for t, _ in pairs)
            length = int(state["lengths"][key])
            index.lengths[doc_id] = length
            if doc_id >= len(index._dl):
                grown = np.zeros(max(doc_id + 1, 2 * len(index._dl)), dtype=np.float32)
                grown[: len(index._dl)] = index._dl
                index._dl = grown
            index._dl[doc_id] = length
            index.total_length += length
        return index
