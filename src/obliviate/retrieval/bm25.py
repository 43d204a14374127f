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

import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable

import numpy as np

__all__ = ["BM25Index", "Posting", "tokenize", "STOP_WORDS"]

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into is "
    "it its me my no not of on or our she so than that the their them then there these they this those to too "
    "us was we were what when where which who whom why will with would you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` without stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


class Posting:
    """One term's postings as parallel arrays (doc ids, term frequencies) with a position map: append to add, swap
    the last entry in to remove (the removed entry's slot is zeroed), so both are O(1) and search reads the arrays
    as they are."""

    __slots__ = ("ids", "tfs", "n", "pos")

    def __init__(self) -> None:
        self.ids = np.zeros(2, dtype=np.int64)
        self.tfs = np.zeros(2, dtype=np.float32)
        self.n = 0
        self.pos: dict[int, int] = {}

    def __len__(self) -> int:
        return self.n

    def add(self, doc_id: int, tf: int) -> None:
        if self.n == len(self.ids):
            self.ids = np.concatenate([self.ids, np.zeros(self.n, dtype=np.int64)])
            self.tfs = np.concatenate([self.tfs, np.zeros(self.n, dtype=np.float32)])
        self.ids[self.n], self.tfs[self.n] = doc_id, tf
        self.pos[doc_id] = self.n
        self.n += 1

    def remove(self, doc_id: int) -> None:
        i = self.pos.pop(doc_id)
        last = self.n - 1
        if i != last:
            moved = int(self.ids[last])
            self.ids[i], self.tfs[i] = moved, self.tfs[last]
            self.pos[moved] = i
        self.ids[last], self.tfs[last] = 0, 0.0
        self.n = last

    def tf(self, doc_id: int) -> int:
        return int(self.tfs[self.pos[doc_id]])

    def to_dict(self) -> dict[int, int]:
        return {int(d): int(t) for d, t in zip(self.ids[: self.n], self.tfs[: self.n])}


class BM25Index:
    """Postings ``term -> Posting`` with document lengths; add, remove, search (see the module docstring).
    Document ids are the store's non-negative integer ids."""

    def __init__(self, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = float(k1), float(b)
        self.postings: dict[str, Posting] = {}
        self.terms: dict[int, tuple[str, ...]] = {}  # doc id -> its distinct terms (what a delete must visit)
        self.lengths: dict[int, int] = {}
        self._dl = np.zeros(1024, dtype=np.float32)  # doc length by id, for vectorised scoring
        self.total_length = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self.lengths

    def _room(self, doc_id: int) -> None:
        if doc_id >= len(self._dl):
            grown = np.zeros(max(doc_id + 1, 2 * len(self._dl)), dtype=np.float32)
            grown[: len(self._dl)] = self._dl
            self._dl = grown

    def add(self, doc_id: int, text: str) -> None:
        self._add_counts(int(doc_id), Counter(tokenize(text)))

    def _add_counts(self, doc_id: int, counts: Counter | dict[str, int]) -> None:
        if doc_id in self.lengths:
            self.remove([doc_id])
        for term, tf in counts.items():
            posting = self.postings.get(term)
            if posting is None:
                posting = self.postings[term] = Posting()
            posting.add(doc_id, tf)
        length = int(sum(counts.values()))
        self.terms[doc_id] = tuple(counts)
        self.lengths[doc_id] = length
        self._room(doc_id)
        self._dl[doc_id] = length
        self.total_length += length

    def remove(self, doc_ids: Iterable[int]) -> None:
        """Remove each document's postings; ids not in the index are ignored."""
        for doc_id in doc_ids:
            doc_id = int(doc_id)
            terms = self.terms.pop(doc_id, None)
            if terms is None:
                continue
            for term in terms:
                posting = self.postings[term]
                posting.remove(doc_id)
                if not posting.n:
                    del self.postings[term]
            self.total_length -= self.lengths.pop(doc_id)
            self._dl[doc_id] = 0.0

    def posting(self, term: str) -> dict[int, int]:
        """``{doc id: term frequency}`` of ``term`` (empty when no document has it)."""
        found = self.postings.get(term)
        return found.to_dict() if found is not None else {}

    def idf(self, term: str) -> float:
        n, df = len(self.lengths), len(self.postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def _accumulate(self, query: str) -> tuple[np.ndarray | None, list[Posting]]:
        """Every document's score for ``query`` in a dense array indexed by doc id (``None`` when no document shares
        a term), and the query's postings, rarest first. One vectorised scatter-add per distinct query term."""
        n = len(self.lengths)
        if n == 0:
            return None, []
        avgdl = self.total_length / n if self.total_length else 1.0
        base, slope = self.k1 * (1.0 - self.b), self.k1 * self.b / avgdl
        found = []
        for term, qtf in Counter(tokenize(query)).items():
            posting = self.postings.get(term)
            if posting:
                found.append((posting, qtf))
        if not found:
            return None, []
        found.sort(key=lambda item: item[0].n)
        acc = np.zeros(len(self._dl), dtype=np.float64)
        for posting, qtf in found:
            ids, tf = posting.ids[: posting.n], posting.tfs[: posting.n].astype(np.float64)
            weight = qtf * math.log(1.0 + (n - posting.n + 0.5) / (posting.n + 0.5))  # qtf * idf(term)
            norm = base + slope * self._dl[ids].astype(np.float64)
            acc[ids] += weight * tf / (tf + norm)  # ids are distinct within a posting
        return acc, [posting for posting, _ in found]

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """``(doc ids, scores)`` of every document that shares a term with ``query`` (in id order)."""
        acc, _ = self._accumulate(query)
        if acc is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        ids = np.flatnonzero(acc)  # every term score is > 0 (idf > 0, tf > 0)
        return ids.astype(np.int64), acc[ids]

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(doc id, score)`` pairs, best first (ties by the smaller id).

        Exact top-k without sorting or partitioning every matching document: the final scores of the documents in
        the rarest query terms' postings (at least ``k`` of them) give a lower bound ``theta`` on the ``k``-th best
        score, so only documents scoring ``>= theta`` (one vectorised comparison) can be in the top ``k``; those
        few are ordered by (score desc, id asc). When the query's postings hold fewer than ``k`` distinct documents,
        every matching document is ranked."""
        acc, postings = self._accumulate(query)
        if acc is None:
            return []
        k = int(k)
        seen, total = [], 0
        for posting in postings:
            seen.append(posting.ids[: posting.n])
            total += posting.n
            if total >= 4 * k:
                break
        probe = np.unique(np.concatenate(seen))
        if len(probe) >= k:
            theta = np.partition(acc[probe], len(probe) - k)[len(probe) - k]  # k-th best among the probe: > 0
            ids = np.flatnonzero(acc >= theta)
        else:
            ids = np.flatnonzero(acc)
        scores = acc[ids]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    # ------------------------------------------------------------------ snapshot
    def to_arrays(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """``(vocabulary, doc ids, term indexes, term frequencies)``: one entry per (document, distinct term), in
        document order; :meth:`from_arrays` rebuilds the index from them."""
        vocab = sorted(self.postings)
        index = {t: i for i, t in enumerate(vocab)}
        docs, terms, tfs = [], [], []
        for doc_id, doc_terms in self.terms.items():
            for t in doc_terms:
                docs.append(doc_id)
                terms.append(index[t])
                tfs.append(self.postings[t].tf(doc_id))
        return (vocab, np.asarray(docs, dtype=np.int64), np.asarray(terms, dtype=np.int32),
                np.asarray(tfs, dtype=np.float32))

    @classmethod
    def from_arrays(cls, vocab: list[str], docs: np.ndarray, terms: np.ndarray, tfs: np.ndarray, *,
                    k1: float = 1.5, b: float = 0.75) -> BM25Index:
        """The index of the entries ``(docs[i], vocab[terms[i]], tfs[i])``, each document's entries contiguous."""
        index = cls(k1=k1, b=b)
        if len(docs) == 0:
            return index
        order = np.argsort(terms, kind="stable")
        sorted_terms = terms[order]
        cuts = np.flatnonzero(np.diff(sorted_terms)) + 1
        for chunk in np.split(order, cuts):
            posting = Posting()
            posting.ids, posting.tfs = docs[chunk].copy(), tfs[chunk].astype(np.float32)
            posting.n = len(chunk)
            posting.pos = dict(zip(posting.ids.tolist(), range(posting.n)))
            index.postings[vocab[int(terms[chunk[0]])]] = posting
        starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
        ends = np.r_[starts[1:], len(docs)]
        lengths = np.add.reduceat(tfs.astype(np.float64), starts)
        term_list = terms.tolist()
        for a, e, length in zip(starts.tolist(), ends.tolist(), lengths.tolist()):
            doc_id = int(docs[a])
            index.terms[doc_id] = tuple(vocab[t] for t in term_list[a:e])
            index.lengths[doc_id] = int(length)
        index._room(int(docs.max()))
        index._dl[np.asarray(list(index.lengths), dtype=np.int64)] = np.asarray(list(index.lengths.values()))
        index.total_length = int(sum(index.lengths.values()))
        return index

    @classmethod
    def from_texts(cls, doc_ids: Iterable[int], texts: Iterable[str], *, k1: float = 1.5, b: float = 0.75) -> BM25Index:
        """The index of ``texts`` (built in bulk: the same as adding them one by one)."""
        vocab: dict[str, int] = {}
        docs, terms, tfs = [], [], []
        for doc_id, text in zip(doc_ids, texts):
            for term, tf in Counter(tokenize(text)).items():
                docs.append(int(doc_id))
                terms.append(vocab.setdefault(term, len(vocab)))
                tfs.append(tf)
        return cls.from_arrays(list(vocab), np.asarray(docs, dtype=np.int64), np.asarray(terms, dtype=np.int32),
                               np.asarray(tfs, dtype=np.float32), k1=k1, b=b)

    def to_bytes(self) -> bytes:
        vocab, docs, terms, tfs = self.to_arrays()
        head = json.dumps({"k1": self.k1, "b": self.b, "vocab": vocab, "n": len(docs)}).encode()
        return struct.pack("<Q", len(head)) + head + docs.tobytes() + terms.tobytes() + tfs.tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> BM25Index:
        (length,) = struct.unpack("<Q", raw[:8])
        head = json.loads(raw[8 : 8 + length])
        n, at = int(head["n"]), 8 + length
        docs = np.frombuffer(raw, dtype=np.int64, count=n, offset=at)
        terms = np.frombuffer(raw, dtype=np.int32, count=n, offset=at + 8 * n)
        tfs = np.frombuffer(raw, dtype=np.float32, count=n, offset=at + 12 * n)
        return cls.from_arrays(head["vocab"], docs, terms, tfs, k1=head["k1"], b=head["b"])
