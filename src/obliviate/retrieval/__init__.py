"""Retrieval where deletion is unlearning (Min et al. 2023, SILO: keep deletable content out of the weights, in a
datastore, and honour a deletion by deleting from the store).

- :mod:`~obliviate.retrieval.store`: documents with stable ids and owners in SQLite, a FAISS vector index and a
  BM25 keyword index, hybrid ranking; add, search, delete (atomic, crash-safe), compact.
- :mod:`~obliviate.retrieval.expand`: scope expansion of a delete to near-duplicates, quotations and paraphrases.
- :mod:`~obliviate.retrieval.rag`: a retrieval-augmented answerer on a causal LM (SmolLM2-135M-Instruct).
- :mod:`~obliviate.retrieval.attacks`: extraction of deleted content, prompt-injection extraction of other
  documents in context, and an output filter.
- :mod:`~obliviate.retrieval.ledger_target`: the store as a deletion target of the ledger.
"""

from obliviate.retrieval.embed import EMBEDDERS, Embedder, HashingEmbedder, MiniLMEmbedder, make_embedder
from obliviate.retrieval.store import (
    CRASH_POINTS,
    CorruptStoreError,
    DeleteResult,
    Document,
    DocumentStore,
    EmbedderMismatchError,
    Hit,
    StoreNotFoundError,
    rrf,
)

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "make_embedder",
    "CRASH_POINTS",
    "CorruptStoreError",
    "DeleteResult",
    "Document",
    "DocumentStore",
    "EmbedderMismatchError",
    "Hit",
    "StoreNotFoundError",
    "rrf",
]
