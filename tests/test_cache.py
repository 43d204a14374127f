"""The one on-disk cache: content keys, atomic entries, corrupt entries detected and rebuilt (files and folders)."""

from __future__ import annotations

import json

import pytest

from obliviate.cache import (
    cache_root,
    check_folder,
    content_key,
    default_cache_dir,
    entry_path,
    load_or_build,
    write_folder,
)
from obliviate.errors import CorruptCheckpointError, InvalidInputError


def test_content_key_is_the_sha256_of_canonical_json():
    import hashlib

    assert content_key({"b": 1, "a": [2, 3]}) == content_key({"a": [2, 3], "b": 1})
    assert content_key({"a": 1}) == hashlib.sha256(json.dumps({"a": 1}).encode()).hexdigest()
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_cache_root_and_entry_path(tmp_path):
    assert cache_root(False) is None and cache_root(True) == default_cache_dir() and cache_root(tmp_path) == tmp_path
    assert entry_path(tmp_path, "oracles", "k") == tmp_path / "oracles" / "k.safetensors"
    with pytest.raises(InvalidInputError, match="cache must be"):
        cache_root(3)


def _text_entry(tmp_path):
    """A tiny entry kind for the tests: a text file whose first line is the sha256 of the rest."""
    import hashlib

    def save(value, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hashlib.sha256(value.encode()).hexdigest() + "\n" + value)

    def load(path):
        digest, _, value = path.read_text().partition("\n")
        if hashlib.sha256(value.encode()).hexdigest() != digest:
            raise CorruptCheckpointError(path, "hash mismatch")
        return value

    return tmp_path / "kind" / "key.txt", load, save


def test_load_or_build_builds_once_then_loads(tmp_path):
    path, load, save = _text_entry(tmp_path)
    calls = []
    build = lambda: calls.append(1) or "weights"  # noqa: E731
    assert load_or_build(path, load=load, build=build, save=save) == ("weights", False)
    assert load_or_build(path, load=load, build=build, save=save) == ("weights", True)
    assert calls == [1]
    assert load_or_build(None, load=load, build=build, save=save) == ("weights", False) and calls == [1, 1]


def test_a_corrupt_entry_is_discarded_and_rebuilt_never_returned(tmp_path):
    path, load, save = _text_entry(tmp_path)
    load_or_build(path, load=load, build=lambda: "good", save=save)
    path.write_text(path.read_text().replace("good", "evil"))
    with pytest.warns(UserWarning, match="discarding the cache entry"):
        value, from_cache = load_or_build(path, load=load, build=lambda: "good", save=save)
    assert (value, from_cache) == ("good", False) and load(path) == "good"


def test_folder_entries_are_atomic_and_checked_by_content(tmp_path):
    folder = tmp_path / "models" / "m"
    write_folder(folder, lambda tmp: ((tmp / "a.bin").write_bytes(b"\x00" * 64), (tmp / "b.txt").write_text("x")))
    check_folder(folder)
    assert set(json.loads((folder / "manifest.json").read_text())) == {"a.bin", "b.txt"}
    assert [p.name for p in folder.parent.iterdir()] == ["m"]  # no temporary sibling left
    (folder / "a.bin").write_bytes(b"\x00" * 63 + b"\x01")  # same size, other content
    with pytest.raises(CorruptCheckpointError, match="manifest"):
        check_folder(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(CorruptCheckpointError, match="manifest"):
        check_folder(folder)


def test_a_failed_folder_write_leaves_nothing(tmp_path):
    folder = tmp_path / "models" / "m"

    def fail(tmp):
        (tmp / "half").write_bytes(b"1")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_folder(folder, fail)
    assert not folder.exists() and list(folder.parent.iterdir()) == []
