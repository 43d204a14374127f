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
