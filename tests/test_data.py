"""Datasets with stable ids: loaders, validation, splits, selections, fingerprints, CIFAR-10 files."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import obliviate as ob
from obliviate.data import cifar10, from_arrays, synthetic
from obliviate.errors import (
    DuplicateIdsError,
    EmptyForgetSetError,
    InvalidInputError,
    UnknownIdsError,
    UnknownOwnerError,
)


def small(n: int = 12, *, ids=None, owners=None) -> ob.Dataset:
    rng = np.random.default_rng(0)
    return from_arrays(rng.normal(size=(n, 3)).astype(np.float32), np.arange(n) % 3, ids=ids, owners=owners)


# ---------------------------------------------------------------------------------- digits
def test_digits_shape_classes_and_unique_ids(digits):
    assert len(digits) == 1797
    assert digits.X.shape == (1797, 64) and digits.X.dtype == np.float32
    assert digits.y.dtype == np.int64 and set(np.unique(digits.y)) == set(range(10))
    assert digits.num_classes == 10 and digits.classes == tuple(str(c) for c in range(10))
    assert np.array_equal(digits.ids, np.arange(1797)) and len(np.unique(digits.ids)) == 1797
    assert 0.0 <= digits.X.min() and digits.X.max() <= 1.0  # scaled from 0..16
    X, y = digits.tensors
    assert X.shape == (1797, 64) and str(X.dtype) == "torch.float32" and str(y.dtype) == "torch.int64"


def test_digits_writers_are_seeded_owners():
    a, b, c = ob.data.digits(writers=7, seed=1), ob.data.digits(writers=7, seed=1), ob.data.digits(writers=7, seed=2)
    assert np.array_equal(a.owners, b.owners) and not np.array_equal(a.owners, c.owners)
    assert len(a.owner_names) == 7 and a.owner_names[0] == "writer-000"
    for bad in (0, 2.5):
        with pytest.raises(InvalidInputError, match="writers must be"):
            ob.data.digits(writers=bad)


# ---------------------------------------------------------------------------------- from_arrays validation
@pytest.mark.parametrize(
    ("X", "y", "kwargs", "fragment"),
    [
        (np.zeros((4, 2)), np.zeros(3, dtype=int), {}, "y must have shape (4,)"),
        (np.zeros(4), np.zeros(4, dtype=int), {}, "X must have examples on axis 0"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), {}, "no examples"),
        (np.zeros((3, 2)), np.array([0.0, 1.5, 2.0]), {}, "integer class labels"),
        (np.zeros((3, 2)), np.array(["a", "b", "a"]), {}, "integer class labels"),
        (np.zeros((3, 2)), np.array([0, -1, 1]), {}, "must be >= 0"),
        (np.zeros((3, 2)), np.array([0, 1, 5]), {"num_classes": 3}, "out of range"),
        (np.array([[0.0, np.nan], [1, 1], [2, 2]]), np.array([0, 1, 1]), {}, "NaN or infinite"),
        (np.array([[0.0, np.inf], [1, 1], [2, 2]]), np.array([0, 1, 1]), {}, "NaN or infinite"),
        (np.array([["a", "b"]] * 3), np.array([0, 1, 1]), {}, "X must be numeric"),
        (np.zeros((3, 2)), np.array([0, 1, 1]), {"ids": [1, 2]}, "one entry per example"),
        (np.zeros((3, 2)), np.array([0, 1, 1]), {"ids": ["a", "b", "c"]}, "ids must be integers"),
        (np.zeros((3, 2)), np.array([0, 1, 1]), {"ids": [0.5, 1, 2]}, "ids must be integers"),
        (np.zeros((3, 2)), np.array([0, 1, 1]), {"owners": ["x"]}, "one entry per example"),
    ],
)
def test_from_arrays_rejects_bad_input(X, y, kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        from_arrays(X, y, **kwargs)


def test_from_arrays_duplicate_ids_name_them():
    with pytest.raises(DuplicateIdsError, match=r"2 id\(s\) appear more than once: \[7, 9\]") as info:
        from_arrays(np.zeros((5, 2)), np.zeros(5, dtype=int), ids=[7, 9, 7, 9, 1])
    assert info.value.duplicated == [7, 9]


def test_from_arrays_accepts_integral_floats_and_custom_ids():
    d = from_arrays(np.ones((3, 2), dtype=np.float64), np.array([0.0, 2.0, 1.0]), ids=[10.0, 30.0, 20.0])
    assert d.y.dtype == np.int64 and d.X.dtype == np.float32
    assert list(d.ids) == [10, 30, 20] and d.num_classes == 3


# ---------------------------------------------------------------------------------- split
def test_split_is_seeded_disjoint_stratified_and_keeps_ids(digits):
    train, test = digits.split(test_size=0.25, seed=0)
    again, _ = digits.split(test_size=0.25, seed=0)
    other, _ = digits.split(test_size=0.25, seed=1)
    assert np.array_equal(train.ids, again.ids) and not np.array_equal(train.ids, other.ids)
    assert len(np.intersect1d(train.ids, test.ids)) == 0
    assert np.array_equal(np.union1d(train.ids, test.ids), digits.ids)
    assert len(test) == math.ceil(0.25 * len(digits))  # sklearn rounds the test share up
    # every example keeps its id: the row of id i is digits' row of id i
    assert np.array_equal(test.X, digits.X[test.ids]) and np.array_equal(test.y, digits.y[test.ids])
    # stratified: each class's share in test within one example of its share overall
    overall, in_test = np.bincount(digits.y), np.bincount(test.y, minlength=10)
    assert np.all(np.abs(in_test - overall * 0.25) <= 1)


def test_split_depends_on_the_id_set_not_row_order(digits):
    shuffled = digits.subset(np.random.default_rng(3).permutation(digits.ids))
    assert not np.array_equal(shuffled.ids, digits.ids)
    for a, b in zip(digits.split(test_size=0.3, seed=5), shuffled.split(test_size=0.3, seed=5), strict=True):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.X, b.X)


def test_split_bad_arguments():
    with pytest.raises(InvalidInputError, match="test_size"):
        small().split(test_size=1.0)
    lonely = from_arrays(np.zeros((5, 2)), [0, 0, 0, 0, 1])  # class 1 has one member: cannot stratify
    with pytest.raises(InvalidInputError, match="stratify=False"):
        lonely.split(test_size=0.4)
    train, test = lonely.split(test_size=0.4, stratify=False)
    assert len(train) == 3 and len(test) == 2


# ---------------------------------------------------------------------------------- selections
def test_sample_ids_fraction_and_count_are_seeded_subsets(train_set):
    frac = train_set.sample_ids(0.1, seed=0)
    assert len(frac) == round(0.1 * len(train_set)) and np.all(np.diff(frac) > 0)
    assert np.all(train_set.contains(frac))
    assert np.array_equal(frac, train_set.sample_ids(0.1, seed=0))
    assert not np.array_equal(frac, train_set.sample_ids(0.1, seed=1))
    count = train_set.sample_ids(25, seed=4)
    assert len(count) == 25 and len(np.unique(count)) == 25
    shuffled = train_set.subset(train_set.ids[::-1])
    assert np.array_equal(shuffled.sample_ids(25, seed=4), count)  # a function of the id set


@pytest.mark.parametrize(
    ("size", "error"),
    [(0, EmptyForgetSetError), (-2, EmptyForgetSetError), (1.0, InvalidInputError), (0.0, InvalidInputError),
     (13, InvalidInputError), ("5", InvalidInputError), (True, InvalidInputError)],
)
def test_sample_ids_bad_sizes(size, error):
    with pytest.raises(error):
        small().sample_ids(size)


def test_ids_of_class(train_set):
    threes = train_set.ids_of_class(3)
    assert len(threes) == int((train_set.y == 3).sum()) > 0
    assert np.all(train_set.subset(threes).y == 3) and np.all(np.diff(threes) > 0)
    assert not np.any(train_set.without(threes).y == 3)
    with pytest.raises(InvalidInputError, match="classes 0..9"):
        train_set.ids_of_class(10)


def test_owners_resolve_to_their_ids():
    d = small(6, ids=[5, 6, 7, 8, 9, 10], owners=["ann", "bob", "ann", "cy", "bob", "ann"])
    assert d.owner_names == ("ann", "bob", "cy")
    assert list(d.ids_of_owners(["ann"])) == [5, 7, 10]
    assert list(d.ids_of_owners(["cy", "bob"])) == [6, 8, 9]
    assert list(d.subset([7, 8]).owners) == ["ann", "cy"]
    with pytest.raises(UnknownOwnerError, match="'zed'"):
        d.ids_of_owners(["ann", "zed"])
    with pytest.raises(UnknownOwnerError, match="records no owners"):
        small().ids_of_owners(["ann"])


def test_subset_and_without_go_by_id_not_position():
    d = small(6, ids=[50, 40, 30, 20, 10, 0])
    sub = d.subset([10, 50])
    assert list(sub.ids) == [10, 50]
    assert np.array_equal(sub.X, d.X[[4, 0]]) and np.array_equal(sub.y, d.y[[4, 0]])
    rest = d.without([10, 50])
    assert list(rest.ids) == [40, 30, 20, 0] and np.array_equal(rest.X, d.X[[1, 2, 3, 5]])
    assert len(d) == 6  # the original is untouched
    with pytest.raises(UnknownIdsError, match=r"1 id\(s\) not in .*\[99\]"):
        d.subset([10, 99])
    with pytest.raises(UnknownIdsError):
        d.without([99])
    with pytest.raises(InvalidInputError, match="ids must be integers"):
        d.subset(["a"])


def test_sorted_by_id_orders_rows():
    d = small(4, ids=[3, 1, 2, 0])
    s = d.sorted_by_id()
    assert list(s.ids) == [0, 1, 2, 3] and np.array_equal(s.X, d.X[[3, 1, 2, 0]])
    assert s.sorted_by_id() is s


# ---------------------------------------------------------------------------------- fingerprint
def test_fingerprint_tracks_content_not_row_order():
    d = small(8)
    perm = np.random.default_rng(1).permutation(8)
    reordered = from_arrays(d.X[perm], d.y[perm], ids=d.ids[perm])
    assert reordered.fingerprint == d.fingerprint
    X = d.X.copy()
    X[5, 1] += 1e-3
    assert from_arrays(X, d.y, ids=d.ids).fingerprint != d.fingerprint
    y = d.y.copy()
    y[0] = (y[0] + 1) % 3
    assert from_arrays(d.X, y, ids=d.ids).fingerprint != d.fingerprint
    assert from_arrays(d.X, d.y, ids=d.ids + 100).fingerprint != d.fingerprint
    assert from_arrays(d.X, d.y, ids=d.ids, num_classes=5).fingerprint != d.fingerprint  # another output size
    assert from_arrays(d.X.reshape(8, 3, 1), d.y, ids=d.ids).fingerprint != d.fingerprint  # another input shape


def test_fingerprint_follows_owners_by_id_not_by_row():
    d = small(8, owners=[f"o{i % 3}" for i in range(8)])
    perm = np.random.default_rng(2).permutation(8)
    assert from_arrays(d.X[perm], d.y[perm], ids=d.ids[perm], owners=d.owners[perm]).fingerprint == d.fingerprint
    moved = d.owners.copy()
    moved[[0, 1]] = moved[[1, 0]]  # one example changes hands
    assert from_arrays(d.X, d.y, ids=d.ids, owners=moved).fingerprint != d.fingerprint


# ---------------------------------------------------------------------------------- .npz files
def test_from_npz_round_trip_with_ids_and_owners(tmp_path):
    d = small(6, ids=[10, 11, 12, 13, 14, 15], owners=["ann", "bo", "ann", "cy", "bo", "ann"])
    path = tmp_path / "owned.npz"
    np.savez(path, X=d.X, y=d.y, ids=d.ids, owners=np.asarray(d.owners, dtype=str))
    back = ob.data.from_npz(path)
    assert back.name == "owned" and back.fingerprint == d.fingerprint
    assert back.ids_of_owners(["ann"]).tolist() == [10, 12, 15]


def test_the_largest_allowed_label_is_accepted():
    top = ob.data.MAX_CLASSES - 1
    d = from_arrays(np.zeros((2, 1)), np.array([0, top]))
    assert d.num_classes == ob.data.MAX_CLASSES
    with pytest.raises(InvalidInputError, match="too large"):
        from_arrays(np.zeros((2, 1)), np.array([0, top + 1]))


def test_ids_at_the_int64_limits_are_kept_exactly():
    limits = from_arrays(np.zeros((2, 1)), np.array([0, 1]), ids=np.array([-(2**63), 2**63 - 1], dtype=np.int64))
    assert limits.ids.tolist() == [-(2**63), 2**63 - 1]
    unsigned = from_arrays(np.zeros((2, 1)), np.array([0, 1]), ids=np.array([0, 2**63 - 1], dtype=np.uint64))
    assert unsigned.ids.tolist() == [0, 2**63 - 1]


# ---------------------------------------------------------------------------------- synthetic
def test_synthetic_is_seeded_and_learnable_shape():
    a, b, c = synthetic(200, 5, 4, seed=3), synthetic(200, 5, 4, seed=3), synthetic(200, 5, 4, seed=4)
    assert a.X.shape == (200, 5) and a.num_classes == 4 and set(np.unique(a.y)) <= set(range(4))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y) and a.fingerprint == b.fingerprint
    assert not np.array_equal(a.X, c.X)
    with pytest.raises(InvalidInputError, match="classes"):
        synthetic(10, 3, 1)
    with pytest.raises(InvalidInputError, match="integer n, d and classes"):
        synthetic(100.5, 3, 2)


# ---------------------------------------------------------------------------------- CIFAR-10 files
def _pickle(path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def _images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), rng.integers(0, 10, size=n).tolist()


@pytest.fixture
def cifar_dir(tmp_path):
    """A tiny folder in the CIFAR-10 python release format: 5 train batches of 2, a test batch of 3."""
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    train = [_images(2, seed=i) for i in range(1, 6)]
    for i, (data, labels) in enumerate(train, start=1):
        _pickle(root / f"data_batch_{i}", {b"batch_label": b"training batch", b"data": data, b"labels": labels})
    test = _images(3, seed=99)
    _pickle(root / "test_batch", {b"data": test[0], b"labels": test[1]})
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _pickle(root / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return tmp_path, train, test


def test_cifar10_reads_the_python_release(cifar_dir):
    parent, train_batches, test_batch = cifar_dir
    train = cifar10(parent, normalize=False)  # finds the cifar-10-batches-py folder inside
    raw = np.concatenate([d for d, _ in train_batches])
    assert train.X.shape == (10, 3, 32, 32) and train.X.dtype == np.float32
    assert list(train.y) == sum((labels for _, labels in train_batches), [])
    assert list(train.ids) == list(range(10))
    assert train.classes[0] == "airplane" and train.classes[9] == "truck" and train.num_classes == 10
    # channel-major rows: bytes 0..1023 are the red plane, row by row; 1024.. green; 2048.. blue
    first = raw[0]
    assert train.X[0, 0, 0, 0] == pytest.approx(first[0] / 255)
    assert train.X[0, 0, 0, 31] == pytest.approx(first[31] / 255)
    assert train.X[0, 0, 1, 0] == pytest.approx(first[32] / 255)
    assert train.X[0, 1, 0, 0] == pytest.approx(first[1024] / 255)
    assert train.X[0, 2, 31, 31] == pytest.approx(first[3071] / 255)
    np.testing.assert_allclose(train.X.reshape(10, -1), raw / 255.0, rtol=0, atol=1e-7)

    test = cifar10(parent / "cifar-10-batches-py", split="test", normalize=False)
    assert list(test.ids) == [50_000, 50_001, 50_002] and list(test.y) == test_batch[1]


def test_cifar10_normalises_per_channel(cifar_dir):
    parent, _, _ = cifar_dir
    raw, norm = cifar10(parent, normalize=False), cifar10(parent)
    mean = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(norm.X, (raw.X - mean) / std, rtol=1e-6, atol=1e-6)


def test_cifar10_missing_or_corrupt_files(tmp_path, cifar_dir):
    with pytest.raises(InvalidInputError, match="does not download"):
        cifar10(tmp_path / "nowhere")
    parent, _, _ = cifar_dir
    with pytest.raises(InvalidInputError, match="split must be"):
        cifar10(parent, split="valid")
    root = parent / "cifar-10-batches-py"
    good = (root / "data_batch_3").read_bytes()
    (root / "data_batch_3").write_bytes(good[: len(good) // 2])  # truncated pickle
    with pytest.raises(InvalidInputError, match="data_batch_3"):
        cifar10(parent)
    _pickle(root / "data_batch_3", ["not", "a", "dict"])
    with pytest.raises(InvalidInputError, match="not a dict"):
        cifar10(parent)
    _pickle(root / "data_batch_3", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(InvalidInputError, match=r"\(n, 3072\)"):
        cifar10(parent)
    _pickle(root / "data_batch_3", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(InvalidInputError, match="2 images but 1 labels"):
        cifar10(parent)
    _pickle(root / "data_batch_3", {b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(InvalidInputError, match="lacks"):
        cifar10(parent)
    (root / "data_batch_3").write_bytes(good)
    (root / "batches.meta").write_bytes(b"garbage")
    with pytest.raises(InvalidInputError, match="batches.meta"):
        cifar10(parent)
