"""The vector index: exact inner-product search with FAISS over a matrix that forgets in O(dim).

Rows are unit-norm embeddings, so the inner product is the cosine similarity. Search is FAISS's exhaustive
k-nearest-neighbour kernel (``faiss.knn(..., metric=faiss.METRIC_INNER_PRODUCT)``, the same blocked BLAS search that
``faiss.IndexFlatIP.search`` runs) on the live rows. A delete moves the last live row into the deleted row's place
and zeroes the vacated row, so the deleted vector is no longer anywhere in the matrix and no other row moves
elsewhere: O(dim) work. (``faiss.IndexIDMap2(IndexFlatIP).remove_ids`` compacts the whole matrix instead:
23 ms per delete at 100,000 x 384 on this machine, over the 10 ms budget; an IVF index with a hash-table direct
map removes in microseconds but searches approximately: that is the index to put behind this interface past
a few million documents, or a sharded one.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["VectorIndex"]


class VectorIndex:
    """Unit-norm float32 rows keyed by document id; add, remove, exact top-k search."""

    def __init__(self, dim: int, *, capacity: int = 1024) -> None:
        self.dim = int(dim)
        self._matrix = np.zeros((max(1, capacity), self.dim), dtype=np.float32)
        self._ids = np.zeros(max(1, capacity), dtype=np.int64)
        self._row: dict[int, int] = {}
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __contains__(self, doc_id: int) -> bool:
        return int(doc_id) in self._row

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.n].copy()

    @property
    def matrix(self) -> np.ndarray:
        """The live rows (a view; row ``i`` belongs to ``ids[i]``)."""
        return self._matrix[: self.n]

    def vector(self, doc_id: int) -> np.ndarray:
        return self._matrix[self._row[int(doc_id)]].copy()

    def add(self, doc_ids: np.ndarray, vectors: np.ndarray) -> None:
        doc_ids = np.asarray(doc_ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        need = self.n + len(doc_ids)
        if need > len(self._matrix):
            size = max(need, 2 * len(self._matrix))
            matrix = np.zeros((size, self.dim), dtype=np.float32)
            matrix[: self.n] = self._matrix[: self.n]
            ids = np.zeros(size, dtype=np.int64)
            ids[: self.n] = self._ids[: self.n]
            self._matrix, self._ids = matrix, ids
        for doc_id, vec in zip(doc_ids.tolist(), vectors):
            if doc_id in self._row:
                self._matrix[self._row[doc_id]] = vec
                continue
            self._matrix[self.n] = vec
            self._ids[self.n] = doc_id
            self._row[doc_id] = self.n
            self.n += 1

    def remove(self, doc_ids: Iterable[int]) -> None:
        """Remove each id's row (swap with the last live row, zero the vacated one); unknown ids are ignored."""
        for doc_id in doc_ids:
            row = self._row.pop(int(doc_id), None)
            if row is None:
                continue
            last = self.n - 1
            if row != last:
                moved = int(self._ids[last])
                self._matrix[row] = self._matrix[last]
                self._ids[row] = moved
                self._row[moved] = row
            self._matrix[last] = 0.0
            self._ids[last] = 0
            self.n = last

    def shrink(self) -> None:
        """Release the spare capacity (after many deletes)."""
        size = max(1, self.n)
        self._matrix = self._matrix[:size].copy()
        self._ids = self._ids[:size].copy()

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` most similar ``(doc id, cosine)`` pairs, best first."""
        import faiss

        if self.n == 0:
            return []
        k = min(int(k), self.n)
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, self.dim))
        scores, rows = faiss.knn(q, self._matrix[: self.n], k, metric=faiss.METRIC_INNER_PRODUCT)
        return [(int(self._ids[r]), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
