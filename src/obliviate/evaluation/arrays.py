"""Metric inputs, checked at the door: numpy or torch in, validated float64/int64 numpy out.

Every public metric takes plain arrays (or torch tensors) so that it can be called on numbers
computed anywhere; these converters turn them into numpy and raise
:class:`~obliviate.errors.InvalidInputError` naming the argument, its shape and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from obliviate.errors import InvalidInputError

__all__ = ["as_numpy", "float_array", "label_array", "same_shape"]


def as_numpy(value: Any, name: str) -> np.ndarray:
    """``value`` as a numpy array (torch tensors are detached and moved to the CPU first)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be an array of numbers, got {type(value).__name__} ({exc}).") from exc


def float_array(value: Any, name: str, *, ndim: int | None = None, keep_dtype: bool = False) -> np.ndarray:
    """A finite, non-empty array of floats with ``ndim`` axes (float64 unless ``keep_dtype``)."""
    arr = as_numpy(value, name)
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold numbers, got dtype {arr.dtype}.")
    if ndim is not None and arr.ndim != ndim:
        raise InvalidInputError(f"{name} must have {ndim} axis/axes, got shape {arr.shape}.")
    if arr.size == 0:
        raise InvalidInputError(f"{name} is empty (shape {arr.shape}); pass at least one value.")
    if not (keep_dtype and arr.dtype.kind == "f"):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} contains NaN or infinite values; check the model outputs that produced it.")
    return arr


def label_array(value: Any, name: str, *, n: int, num_classes: int) -> np.ndarray:
    """``n`` integer labels in ``[0, num_classes)``."""
    arr = as_numpy(value, name)
    if arr.dtype.kind == "f" and arr.size and np.all(np.mod(arr, 1) == 0):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must hold integer class labels, got dtype {arr.dtype}.")
    if arr.shape != (n,):
        raise InvalidInputError(f"{name} must have shape ({n},) to match the logits' {n} rows, got {arr.shape}.")
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        raise InvalidInputError(
            f"{name} must lie in [0, {num_classes}) for logits with {num_classes} columns; "
            f"found {int(arr.min())}..{int(arr.max())}."
        )
    return arr.astype(np.int64)


def same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Raise naming both shapes when ``a`` and ``b`` differ in shape."""
    if a.shape != b.shape:
        raise InvalidInputError(
            f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}; they must match "
            "(models on axis 0, forget examples on axis 1, the same examples in the same order)."
        )
