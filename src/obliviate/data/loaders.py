"""Dataset constructors: user arrays, bundled digits, generated data, CIFAR-10 from disk.

Nothing here downloads: digits ship inside scikit-learn, ``synthetic`` is generated from a
seed, and ``cifar10`` reads the python-pickle release from a local folder.
"""

from __future__ import annotations

import math
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from obliviate.data.dataset import Dataset, _as_id_array
from obliviate.errors import InvalidInputError

__all__ = ["MAX_CLASSES", "from_arrays", "from_npz", "digits", "synthetic", "cifar10"]


MAX_CLASSES = 100_000
"""The most classes a dataset may have: labels are class indices, and the model gets one output
per class, so a stray label of 1e9 must be refused, not turned into a billion-unit layer."""


def _labels(y: np.ndarray, n: int, num_classes: int | None) -> tuple[np.ndarray, int]:
    """``y`` as int64 class indices and the class count, checked before any cast can wrap a value."""
    if y.shape != (n,):
        raise InvalidInputError(f"y must have shape ({n},) to match X, got {y.shape}.")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(np.mod(y, 1) == 0):
        pass  # whole-number floats are labels too; their range is checked before the cast
    elif y.dtype.kind not in "iu":
        raise InvalidInputError(f"y must hold integer class labels, got dtype {y.dtype}; encode labels first.")
    if y.min() < 0:
        raise InvalidInputError(f"labels must be >= 0, found {int(y.min())}.")
    if y.max() >= MAX_CLASSES:
        raise InvalidInputError(
            f"label {int(y.max())} is too large: labels are class indices 0..{MAX_CLASSES - 1} (at most "
            f"{MAX_CLASSES} classes); encode the labels as 0..k-1 first."
        )
    y = y.astype(np.int64)
    if num_classes is None:
        k = int(y.max()) + 1
    else:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise InvalidInputError(f"num_classes must be an integer, got {num_classes!r}.")
        k = int(num_classes)
        if not 1 <= k <= MAX_CLASSES:
            raise InvalidInputError(f"num_classes must be in 1..{MAX_CLASSES}, got {k}.")
    if y.max() >= k:
        raise InvalidInputError(f"label {int(y.max())} is out of range for num_classes={k}.")
    return y, k


def _owners(owners: Sequence[str] | np.ndarray, n: int) -> np.ndarray:
    """One owner name per example, as a 1-D object array of str (bytes are decoded as UTF-8)."""
    if isinstance(owners, str | bytes):
        raise InvalidInputError(f"owners must list one owner per example, got the single string {owners!r}.")
    arr = np.asarray(owners) if isinstance(owners, np.ndarray) else np.asarray(list(owners), dtype=object)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InvalidInputError(f"owners must have one entry per example ({n}), got an array of shape {arr.shape}.")
    names = []
    for owner in arr.tolist():
        if isinstance(owner, bytes):
            try:
                owner = owner.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError(f"owner {owner[:40]!r} is not UTF-8 text; owners are names.") from exc
        elif isinstance(owner, np.ndarray | list | tuple | dict | set):
            raise InvalidInputError(f"owners must be names (one per example), found {type(owner).__name__}.")
        names.append(str(owner))
    return np.asarray(names, dtype=object)


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

    ``X`` must be real numbers (integer or float; complex, boolean and text are refused), finite.
    ``y`` holds class indices 0..k-1 with k at most :data:`MAX_CLASSES`. ``ids`` default to
    ``0..n-1``; they must be unique integers within int64. ``owners`` (one string per example)
    name the data subject of each example, so requests can say "forget alice".
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2:
        raise InvalidInputError(f"X must have examples on axis 0 and features after it; got shape {X.shape}.")
    if X.dtype.kind not in "iuf":  # complex would lose its imaginary part in the float32 cast
        raise InvalidInputError(f"X must be numeric (real integers or floats), got dtype {X.dtype}.")
    n = X.shape[0]
    if n == 0:
        raise InvalidInputError("X has no examples.")
    y, k = _labels(y, n, num_classes)
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused just below
        X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.all(np.isfinite(X)):
        raise InvalidInputError(
            "X contains NaN or infinite values (or values beyond float32's range); clean or impute them first."
        )
    if ids is None:
        id_arr = np.arange(n, dtype=np.int64)
    else:
        id_arr = _as_id_array(ids)
        if id_arr.shape != (n,):
            raise InvalidInputError(f"ids must have one entry per example ({n}), got {id_arr.shape[0]}.")
        Dataset.check_unique(id_arr)
    owner_arr = None if owners is None else _owners(owners, n)
    return Dataset(X=X, y=y, ids=id_arr, owners=owner_arr, num_classes=k, name=name, classes=tuple(classes))


def from_npz(path: str | Path, *, name: str | None = None) -> Dataset:
    """A :class:`Dataset` from an ``.npz`` file with arrays ``X``, ``y`` and optional ``ids``, ``owners``.

    Never unpickles: an archive holding Python objects is refused. An empty, truncated or
    corrupt file, a missing array or an array whose header promises more data than the archive
    holds raises :class:`InvalidInputError` naming the file; nothing is allocated for a size the
    file does not back. The arrays are then validated as by :func:`from_arrays`.
    """
    path = Path(path)
    arrays = _read_npz(path)
    return from_arrays(
        arrays["X"], arrays["y"], ids=arrays.get("ids"), owners=arrays.get("owners"), name=name or path.stem
    )


_NPZ_ARRAYS = ("X", "y", "ids", "owners")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file" if path.exists() else "missing"
        raise InvalidInputError(f"{path} is {what}; give an .npz file with arrays X, y (ids, owners optional).")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path} is empty (0 bytes); write it with numpy.savez(path, X=..., y=...).")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidInputError(
            f"{path} is not an .npz archive ({exc}); write it with numpy.savez(path, X=..., y=...)."
        ) from exc
    with archive:
        members = {info.filename[: -len(".npy")]: info for info in archive.infolist() if info.filename.endswith(".npy")}
        missing = [key for key in ("X", "y") if key not in members]
        if missing:
            raise InvalidInputError(f"{path} lacks array(s) {missing}; it needs X and y (ids, owners optional).")
        return {key: _read_member(path, archive, members[key]) for key in _NPZ_ARRAYS if key in members}


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    key = info.filename[: -len(".npy")]
    damaged = f"{path}: array {key!r} cannot be read"
    try:
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(fh)
            if dtype.hasobject:
                raise InvalidInputError(
                    f"{path}: array {key!r} holds Python objects (dtype {dtype}), which obliviate never unpickles; "
                    "save numbers and strings as plain numpy arrays."
                )
            needed = math.prod(shape) * dtype.itemsize
            if needed > info.file_size - fh.tell():
                raise InvalidInputError(
                    f"{damaged}: its header promises {needed} bytes of {dtype} {tuple(shape)} but the archive holds "
                    f"{info.file_size} bytes; the file is truncated or damaged."
                )
        with archive.open(info) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)
    except InvalidInputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError, TypeError) as exc:
        raise InvalidInputError(f"{damaged} ({type(exc).__name__}: {exc}); the file is damaged.") from exc


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
