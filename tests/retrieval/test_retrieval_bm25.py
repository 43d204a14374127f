"""The BM25 index against bm25s's Lucene BM25 on the same tokens, and its exactness after deletes."""

from __future__ import annotations

import numpy as np
import pytest
from faker import Faker

from obliviate.retrieval.bm25 import BM25Index, tokenize


def _corpus(n: int = 60, seed: int = 0) -> list[str]:
    fake = Faker()
    fake.seed_instance(seed)
    return [fake.paragraph(nb_sentences=3) for _ in range(n)]


def test_scores_equal_bm25s_lucene_on_the_same_tokens():
    bm25s = pytest.importorskip("bm25s")
    texts = _corpus()
    ours = BM25Index()
    for i, t in enumerate(texts):
        ours.add(i, t)
    ref = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    ref.index([tokenize(t) for t in texts], show_progress=False)
    for query in ("first second", texts[3].split(".")[0], "nothing matches zzz", "water " + texts[10][:40]):
        q = [t for t in tokenize(query) if t in ref.vocab_dict]
        want = ref.get_scores(q) if q else np.zeros(len(texts))
        ids, scores = ours.scores(query)
        got = np.zeros(len(texts))
        got[ids] = scores
        assert got == pytest.approx(np.asarray(want, dtype=np.float64), rel=1e-5, abs=1e-6), query


def test_removing_documents_gives_the_index_of_the_rest():
    texts = _corpus(40, seed=1)
    index = BM25Index()
    for i, t in enumerate(texts):
        index.add(i, t)
    gone = [0, 5, 17, 39]
    index.remove(gone)
    fresh = BM25Index()
    for i, t in enumerate(texts):
        if i not in gone:
            fresh.add(i, t)
    def as_dicts(ix):
        return {t: ix.posting(t) for t in ix.postings}

    assert as_dicts(index) == as_dicts(fresh) and index.total_length == fresh.total_length
    restored = BM25Index.from_bytes(index.to_bytes())
    assert as_dicts(restored) == as_dicts(index) and restored.lengths == index.lengths
    bulk = BM25Index.from_texts([i for i in range(len(texts)) if i not in gone], [t for i, t in enumerate(texts)
                                                                                 if i not in gone])
    assert as_dicts(bulk) == as_dicts(index) and bulk.total_length == index.total_length
    assert bulk.search(texts[3][:60], 5) == index.search(texts[3][:60], 5)
    ids, _ = index.scores(" ".join(texts[5].split()[:8]))
    assert not set(ids.tolist()) & set(gone)


def _reference_top_k(index: BM25Index, query: str, k: int) -> list[tuple[int, float]]:
    ids, scores = index.scores(query)
    order = np.lexsort((ids, -scores))[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


@pytest.mark.parametrize("k", [1, 3, 5, 12, 200])
def test_search_is_the_exact_top_k_with_ties_broken_by_the_smaller_id(k):
    texts = _corpus(80, seed=2)
    copy = "Lisbon harbour lighthouse keeper counts ships every morning."
    index = BM25Index()
    for i, t in enumerate(texts):
        index.add(i, t)
    tied = [97, 3, 150, 41, 88, 120, 7, 64, 133, 59]  # identical documents: identical scores
    for doc_id in tied:
        index.add(doc_id, copy)
    for query in ("lighthouse keeper ships", "morning " + texts[4][:50], texts[9].split(".")[0], "zzz qqq"):
        got = index.search(query, k)
        assert got == _reference_top_k(index, query, k), query
    top = [d for d, _ in index.search("lighthouse keeper", 4)]
    assert top == sorted(tied)[:4]


def test_search_after_deletes_equals_a_fresh_index_and_bm25s_top_scores():
    bm25s = pytest.importorskip("bm25s")
    texts = _corpus(120, seed=3)
    index = BM25Index()
    for i, t in enumerate(texts):
        index.add(i, t)
    gone = list(range(0, 120, 7))
    index.remove(gone)
    kept = [i for i in range(len(texts)) if i not in gone]
    fresh = BM25Index.from_texts(kept, [texts[i] for i in kept])
    ref = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    ref.index([tokenize(texts[i]) for i in kept], show_progress=False)
    for query in (texts[8][:70], texts[50].split(".")[0], "water fire " + texts[99][:30]):
        got = index.search(query, 10)
        assert got == fresh.search(query, 10)
        q = [t for t in tokenize(query) if t in ref.vocab_dict]
        want = np.sort(np.asarray(ref.get_scores(q), dtype=np.float64))[::-1][: len(got)]
        assert [s for _, s in got] == pytest.approx(want.tolist(), rel=1e-5)
        assert not {d for d, _ in got} & set(gone)
