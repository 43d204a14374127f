"""Fixtures for the retrieval tests: a small store with the hashing embedder (instant, no model)."""

from __future__ import annotations

import pytest

from obliviate.retrieval import DocumentStore

for _module in ("faiss", "datasketch"):  # the [retrieval] extra; without it the family is not installed
    pytest.importorskip(_module, reason="pip install 'obliviate[retrieval]' (faiss-cpu, datasketch)")

TEXTS = (
    "Marie Curie was born in Warsaw and won two Nobel prizes.",
    "Paris is the capital of France and lies on the Seine.",
    "Gold has the chemical symbol Au and atomic number 79.",
    "The Danube flows through Vienna, Budapest and Belgrade.",
    "Iron has the chemical symbol Fe; steel is mostly iron.",
    "Ada Lovelace wrote the first published computer program.",
)
OWNERS = ("curie", "france", "gold", "danube", "iron", "lovelace")


@pytest.fixture
def store_folder(tmp_path):
    """A store folder holding :data:`TEXTS` (ids 1..6), closed, with its index snapshots written."""
    folder = tmp_path / "store"
    with DocumentStore(folder, embedder="hashing", create=True) as store:
        store.add(list(TEXTS), owners=list(OWNERS))
        store.save_indexes()
    return folder


@pytest.fixture
def store(store_folder):
    with DocumentStore(store_folder) as opened:
        yield opened


@pytest.fixture(scope="session")
def small_corpus():
    """``(texts, owners)`` of the small store (:data:`TEXTS`, :data:`OWNERS`)."""
    return list(TEXTS), list(OWNERS)
