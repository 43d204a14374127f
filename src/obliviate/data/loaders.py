"""Dataset constructors: user arrays, bundled digits, generated data, CIFAR-10 from disk.

Nothing here downloads: digits ship inside scikit-learn, ``synthetic`` is generated from a
seed, and ``cifar10`` reads the python-pickle release from a local folder.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from obliviate.data.dataset import Dataset, _as_id_array
from obliviate.errors import InvalidInputError

__all__ = ["from_arrays", "digits", "synthetic", "cifar10"]


def from_arrays(
    X: np.ndarray,
    y: np.ndarray,
    *,
    ids: Sequence[int] | np.ndarray | None = None,
    owners: Sequence[str] | np.ndarray | None = None,
    num_classes: int | None = None,
    name: str = "data",
    classes: Sequence[str] = (),
) -> Dataset:
    """Validate arrays and wrap them as a :class:`Dataset`.

    ``ids`` default to ``0..n-1``; they must be unique integers. ``owners`` (one string per
    example) name the data subject of each example, so requests can say "forget alice".
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2:
        raise InvalidInputError(f"X must have examples on axis 0 and features after it; got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.number):
        raise InvalidInputError(f"X must be numeric, got dtype {X.dtype}.")
    n = X.shape[0]
    if n == 0:
        raise InvalidInputError("X has no examples.")
    if y.shape != (n,):
        raise InvalidInputError(f"y must have shape ({n},) to match X, got {y.shape}.")
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise InvalidInputError(f"y must hold integer class labels, got dtype {y.dtype}; encode labels first.")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise InvalidInputError(f"labels must be >= 0, found {int(y.min())}.")
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if y.max() >= k:
        raise InvalidInputError(f"label {int(y.max())} is out of range for num_classes={k}.")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.all(np.isfinite(X)):
        raise InvalidInputError("X contains NaN or infinite values; clean or impute them first.")
    if ids is None:
        id_arr = np.arange(n, dtype=np.int64)
    else:
        id_arr = _as_id_array(ids)
        if id_arr.shape != (n,):
            raise InvalidInputError(f"ids must have one entry per example ({n}), got {id_arr.shape[0]}.")
        Dataset.check_unique(id_arr)
    owner_arr = None
    if owners is not None:
        owner_arr = np.asarray([str(o) for o in owners], dtype=object)
        if owner_arr.shape != (n,):
            raise InvalidInputError(f"owners must have one entry per example ({n}), got {owner_arr.shape[0]}.")
    return Dataset(X=X, y=y, ids=id_arr, owners=owner_arr, num_classes=k, name=name, classes=tuple(classes))


def digits(*, writers: int | None = None, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 examples, 64 features, 10 classes).

    Features are scaled to [0, 1]. With ``writers`` set, each example is given one of
    that many fictitious writers as its owner (seeded), so owner requests can be exercised.
    """
    from sklearn.datasets import load_digits

    if writers is not None and (isinstance(writers, bool) or not isinstance(writers, int | np.integer) or writers < 1):
        raise InvalidInputError(f"writers must be a whole number >= 1 (or None for no owners), got {writers!r}.")
    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    owners = None
    if writers is not None:
        rng = np.random.default_rng(seed)
        owners = [f"writer-{int(rng.integers(writers)):03d}" for _ in range(X.shape[0])]
    return from_arrays(
        X, bunch.target, owners=owners, num_classes=10, name="digits", classes=[str(c) for c in range(10)]
    )


def synthetic(n: int = 10_000, d: int = 32, classes: int = 10, *, seed: int = 0, separation: float = 1.5) -> Dataset:
    """A Gaussian mixture classification problem for scale runs (seeded, no download).

    Each class has a mean drawn from ``N(0, separation^2 I)``; examples are the mean plus
    standard normal noise, so the problem is learnable but not trivially separable.
    """
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (n, d, classes)):
        raise InvalidInputError(f"synthetic needs integer n, d and classes; got n={n!r}, d={d!r}, classes={classes!r}.")
    if n < classes or d < 1 or classes < 2:
        raise InvalidInputError(f"synthetic needs n >= classes >= 2 and d >= 1; got n={n}, d={d}, classes={classes}.")
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, separation, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    X = means[y] + rng.normal(size=(n, d))
    return from_arrays(X.astype(np.float32), y, num_classes=classes, name=f"synthetic-{n}x{d}")


_CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
_CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)


def _unpickle(path: Path, what: str) -> dict:
    """A pickled dict of the CIFAR-10 python release; anything else is the user's file problem."""
    try:
        with path.open("rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user problem
        raise InvalidInputError(f"{path} is not a CIFAR-10 python {what} ({exc.__class__.__name__}: {exc}).") from exc
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{path} is not a CIFAR-10 python {what}: it holds a {type(obj).__name__}, not a dict.")
    return obj


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path, "batch")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise InvalidInputError(f"{path} lacks the 'data' and 'labels' entries of a CIFAR-10 batch.")
    try:
        data = np.asarray(data, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64).ravel()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{path}: data or labels are not arrays of integers ({exc}); the batch is damaged.") from exc
    if data.ndim != 2 or data.shape[1] != 3072:
        raise InvalidInputError(f"{path}: expected data of shape (n, 3072), got {data.shape}.")
    if labels.shape[0] != data.shape[0]:
        raise InvalidInputError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels; the batch is damaged.")
    return data, labels


def cifar10(path: str | Path, *, split: str = "train", normalize: bool = True) -> Dataset:
    """CIFAR-10 from the python pickle release in a local folder (``cifar-10-batches-py``).

    ``split="train"`` reads ``data_batch_1..5``, ``"test"`` reads ``test_batch``. Images are
    returned as float32 N x 3 x 32 x 32, scaled to [0, 1] and, by default, standardised with
    the usual per-channel mean and std. Train ids are 0..49,999 and test ids 50,000.., so the
    two splits never share an id. Nothing is downloaded.
    """
    root = Path(path)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if split == "train":
        files = sorted(root.glob("data_batch_*"))
        offset = 0
    elif split == "test":
        files = [root / "test_batch"] if (root / "test_batch").exists() else []
        offset = 50_000
    else:
        raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}.")
    if not files:
        raise InvalidInputError(
            f"No CIFAR-10 {split} batches in {root}. Point to the extracted 'cifar-10-batches-py' folder "
            "(data_batch_1..5, test_batch); obliviate does not download data."
        )
    parts = [_read_batch(f) for f in files]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    X = data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    if normalize:
        X = (X - _CIFAR_MEAN) / _CIFAR_STD
    names: list[str] = []
    meta = root / "batches.meta"
    if meta.exists():
        info = _unpickle(meta, "batches.meta")
        raw = info.get(b"label_names", info.get("label_names", []))
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    return from_arrays(
        X, labels, ids=np.arange(offset, offset + len(labels)), num_classes=10, name=f"cifar10/{split}", classes=names
    )
