"""A labelled dataset whose examples carry stable ids and, where known, owners.

Requests, splits and caches speak of ids, never of positions: an example keeps its id
through every split, subset and reordering, so "forget ids D" means the same examples
wherever the data has travelled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from obliviate.errors import (
    DuplicateIdsError,
    EmptyForgetSetError,
    InvalidInputError,
    UnknownIdsError,
    UnknownOwnerError,
)

__all__ = ["Dataset"]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _as_id_array(ids: Iterable[int] | np.ndarray | int) -> np.ndarray:
    """``ids`` as a flat int64 array; anything that is not an integer within int64 raises (never wraps)."""
    if isinstance(ids, str | bytes):
        raise InvalidInputError(f"ids must be integers, got the string {ids!r}; pass a list of ids.")
    if isinstance(ids, np.ndarray) or np.isscalar(ids):
        arr = np.asarray(ids)  # a single id is a request for that one example
    else:
        try:
            arr = np.asarray(list(ids))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"ids must be a list or array of integers, got {type(ids).__name__}.") from exc
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "O" and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr.flat):
        big = next((int(v) for v in arr.flat if not INT64_MIN <= int(v) <= INT64_MAX), None)
        if big is not None:  # a Python int numpy could not fit in int64
            raise InvalidInputError(f"ids must fit in int64 ({INT64_MIN}..{INT64_MAX}); found {big}.")
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "u" and int(arr.max()) > INT64_MAX:
        raise InvalidInputError(f"ids must fit in int64 ({INT64_MIN}..{INT64_MAX}); found {int(arr.max())}.")
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (np.mod(arr, 1) == 0)
        if not np.all(whole):
            bad = float(arr[~whole].ravel()[0])
            raise InvalidInputError(f"ids must be integers, found {bad!r} (dtype {arr.dtype}).")
        # 2**63 is exactly representable as a float; anything at or beyond it would wrap to INT64_MIN
        outside = (arr >= 2.0**63) | (arr < -(2.0**63))
        if np.any(outside):
            raise InvalidInputError(
                f"ids must fit in int64 ({INT64_MIN}..{INT64_MAX}); found {arr[outside].ravel()[0]:g}."
            )
    elif arr.dtype.kind not in "iu":
        raise InvalidInputError(f"ids must be integers, got dtype {arr.dtype}.")
    return arr.astype(np.int64).ravel()


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``X``, integer labels ``y``, unique int64 ``ids`` and optional ``owners``.

    ``X`` is float32 with examples on the first axis (flat vectors or C x H x W images).
    Build one with :func:`obliviate.data.from_arrays` or a loader; they validate the input.
    """

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    owners: np.ndarray | None = None
    num_classes: int = 0
    name: str = "data"
    classes: tuple[str, ...] = field(default=())

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __repr__(self) -> str:
        owners = f", owners={len(self.owner_names)}" if self.owners is not None else ""
        return (
            f"Dataset({self.name!r}, n={len(self)}, features={tuple(self.X.shape[1:])}, "
            f"classes={self.num_classes}{owners})"
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.X.shape[1:])

    @cached_property
    def _position(self) -> dict[int, int]:
        return {int(i): p for p, i in enumerate(self.ids)}

    @cached_property
    def owner_names(self) -> tuple[str, ...]:
        if self.owners is None:
            return ()
        return tuple(sorted(set(self.owners.tolist())))

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over ids, labels, features (in id order), the number of classes and, when the data
        records them, the owners: the data's identity for caches and for deletion requests.

        The class count sets the model's output size, so it is part of it. Owners are part of it
        because owner requests resolve through them: data with the same examples but other owners
        must not pass for the training data. Data without owners keeps the fingerprint it had
        before owners were covered.
        """
        order = np.argsort(self.ids, kind="stable")
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.ids[order]).tobytes())
        h.update(np.ascontiguousarray(self.y[order].astype(np.int64)).tobytes())
        h.update(np.ascontiguousarray(self.X[order]).tobytes())
        h.update(str(self.X.shape[1:]).encode())
        h.update(f"classes={self.num_classes}".encode())
        if self.owners is not None:
            names = [str(owner).encode("utf-8", "surrogatepass") for owner in self.owners[order].tolist()]
            h.update(b"owners")  # each name length-prefixed, so no two owner lists hash alike
            h.update(b"".join(len(raw).to_bytes(8, "little") + raw for raw in names))
        return h.hexdigest()

    @cached_property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, y)`` as torch tensors (float32, int64), sharing memory with the arrays."""
        return torch.from_numpy(self.X), torch.from_numpy(self.y)

    # ------------------------------------------------------------------ lookup
    def positions(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Row positions of ``ids``; raises :class:`UnknownIdsError` naming the missing ones."""
        ids = _as_id_array(ids)
        pos = self._position
        missing = [int(i) for i in ids if int(i) not in pos]
        if missing:
            raise UnknownIdsError(missing, where=f"dataset {self.name!r}")
        return np.fromiter((pos[int(i)] for i in ids), dtype=np.int64, count=ids.size)

    def contains(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Boolean mask over ``ids``: which are in this dataset."""
        return np.isin(_as_id_array(ids), self.ids)

    def ids_of_owners(self, owners: Iterable[str]) -> np.ndarray:
        """Sorted ids of every example owned by ``owners``; unknown owners raise."""
        owners = [str(o) for o in owners]
        if self.owners is None:
            raise UnknownOwnerError(owners, has_owners=False)
        known = set(self.owner_names)
        missing = [o for o in owners if o not in known]
        if missing:
            raise UnknownOwnerError(missing)
        return np.sort(self.ids[np.isin(self.owners, owners)])

    def ids_of_class(self, label: int) -> np.ndarray:
        """Sorted ids of every example of class ``label``."""
        if not 0 <= int(label) < self.num_classes:
            raise InvalidInputError(
                f"class {label} is out of range: this dataset has classes 0..{self.num_classes - 1}."
            )
        return np.sort(self.ids[self.y == int(label)])

    # ------------------------------------------------------------------ subsets
    def _take(self, positions: np.ndarray, name: str | None = None) -> Dataset:
        return Dataset(
            X=self.X[positions],
            y=self.y[positions],
            ids=self.ids[positions],
            owners=None if self.owners is None else self.owners[positions],
            num_classes=self.num_classes,
            name=name or self.name,
            classes=self.classes,
        )

    def subset(self, ids: Iterable[int] | np.ndarray, *, name: str | None = None) -> Dataset:
        """The examples with ``ids``, in the order given; unknown ids raise."""
        return self._take(self.positions(ids), name)

    def without(self, ids: Iterable[int] | np.ndarray, *, name: str | None = None) -> Dataset:
        """Every example except ``ids`` (ids must be in the dataset)."""
        drop = self.positions(ids)
        keep = np.ones(len(self), dtype=bool)
        keep[drop] = False
        return self._take(np.flatnonzero(keep), name)

    def sorted_by_id(self) -> Dataset:
        """The same examples ordered by id: training sees a function of the id set, not of row order."""
        order = np.argsort(self.ids, kind="stable")
        if np.array_equal(order, np.arange(len(self))):
            return self
        return self._take(order)

    def split(self, *, test_size: float = 0.25, seed: int = 0, stratify: bool = True) -> tuple[Dataset, Dataset]:
        """Deterministic train/test split by ``seed`` (stratified by label by default)."""
        from sklearn.model_selection import train_test_split

        if not 0.0 < test_size < 1.0:
            raise InvalidInputError(f"test_size must be in (0, 1), got {test_size}.")
        data = self.sorted_by_id()  # a function of the id set, not of row order
        positions = np.arange(len(data))
        try:
            train_pos, test_pos = train_test_split(
                positions, test_size=test_size, random_state=seed, stratify=data.y if stratify else None
            )
        except ValueError as exc:  # too few examples (per class) for this test_size
            raise InvalidInputError(
                f"cannot split {len(data)} examples with test_size={test_size}"
                f"{' stratified by label' if stratify else ''}: {exc} Pass stratify=False or a larger dataset."
            ) from exc
        return (
            data._take(np.sort(train_pos), f"{self.name}/train"),
            data._take(np.sort(test_pos), f"{self.name}/test"),
        )

    # ------------------------------------------------------------------ forget selections
    def sample_ids(self, size: float | int, *, seed: int = 0) -> np.ndarray:
        """A seeded random selection of ids: a fraction in (0, 1) or a count >= 1, sorted."""
        n = len(self)
        if isinstance(size, bool) or not isinstance(size, int | float | np.integer | np.floating):
            raise InvalidInputError(f"size must be a fraction in (0, 1) or a count >= 1, got {size!r}.")
        if isinstance(size, float | np.floating):
            if not 0.0 < size < 1.0:
                raise InvalidInputError(f"a fraction must be in (0, 1), got {size}.")
            count = max(1, int(round(size * n)))
        else:
            count = int(size)
        if count < 1:
            raise EmptyForgetSetError(f"sample size {size} selects no example")
        if count > n:
            raise InvalidInputError(f"cannot sample {count} ids from a dataset of {n}.")
        rng = np.random.default_rng(seed)
        chosen = rng.choice(n, size=count, replace=False)
        return np.sort(np.sort(self.ids)[chosen])  # drawn from the id set, so row order does not matter

    @staticmethod
    def check_unique(ids: np.ndarray) -> None:
        uniq, counts = np.unique(ids, return_counts=True)
        if np.any(counts > 1):
            raise DuplicateIdsError(uniq[counts > 1])
