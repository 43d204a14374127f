"""The on-disk cache of trained models: the oracle, the LM fine-tunes and the dequantised SmolLM2.

One rule for every entry: its name is a sha256 of everything that determines its contents
(:func:`content_key`), it is written atomically (a file through
:func:`obliviate.storage.atomic_write_bytes`, a folder by writing a temporary sibling and renaming
it into place), it is verified when read (a file by the weights' sha256 in its header, a folder
by the sha256 of every file in its manifest), and an entry that fails the check is deleted and
rebuilt, never loaded.

``cache`` arguments everywhere take ``True`` (the default folder, ``$OBLIVIATE_CACHE`` or
``~/.cache/obliviate``), a folder, or ``False`` (no cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.storage import atomic_write_bytes

__all__ = [
    "default_cache_dir",
    "cache_root",
    "content_key",
    "entry_path",
    "load_or_build",
    "write_folder",
    "check_folder",
]

T = TypeVar("T")
_MANIFEST = "manifest.json"


def default_cache_dir() -> Path:
    """``$OBLIVIATE_CACHE`` or ``~/.cache/obliviate``."""
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate"))


def cache_root(cache: bool | str | Path) -> Path | None:
    """The cache folder a ``cache`` argument names: ``True`` the default, a path itself, ``False`` none."""
    if cache is False:
        return None
    if cache is True:
        return default_cache_dir()
    if isinstance(cache, str | os.PathLike):
        return Path(cache)
    raise InvalidInputError(f"cache must be True, False or a folder, got {cache!r}.")


def content_key(payload: Mapping[str, Any]) -> str:
    """sha256 of ``payload`` as canonical JSON (sorted keys): the name of the entry it determines."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def entry_path(root: Path, kind: str, key: str, suffix: str = ".safetensors") -> Path:
    """``<root>/<kind>/<key><suffix>``."""
    return root / kind / f"{key}{suffix}"


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def load_or_build(
    path: Path | None,
    *,
    load: Callable[[Path], T],
    build: Callable[[], T],
    save: Callable[[T, Path], None],
    corrupt: tuple[type[BaseException], ...] = (CorruptCheckpointError,),
) -> tuple[T, bool]:
    """``(value, from_cache)``: ``load(path)`` when the entry exists and passes its check, else ``build()``
    then ``save(value, path)``. ``path=None`` (no cache) only builds.

    ``load`` raises one of ``corrupt`` (by default :class:`CorruptCheckpointError`) for an entry that
    cannot be trusted; that entry is deleted (with a warning) and rebuilt.
    """
    if path is not None and path.exists():
        try:
            return load(path), True
        except corrupt as exc:
            warnings.warn(f"discarding the cache entry {path} ({exc}); rebuilding it.", stacklevel=2)
            _discard(path)
    value = build()
    if path is not None:
        save(value, path)
    return value, False


def _file_digests(folder: Path) -> dict[str, str]:
    digests = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != _MANIFEST:
            h = hashlib.sha256()
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digests[p.name] = h.hexdigest()
    return digests


def check_folder(folder: Path) -> None:
    """Raise :class:`CorruptCheckpointError` unless every file of ``folder`` matches its manifest's sha256."""
    try:
        expected = json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise CorruptCheckpointError(folder, f"unreadable manifest: {exc}") from exc
    if _file_digests(folder) != expected:
        raise CorruptCheckpointError(folder, "its files do not match the sha256 recorded in its manifest")


def write_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """Publish a cache folder atomically: ``write(tmp)`` fills a temporary sibling, a manifest of its
    files' sha256 is added, and the sibling is renamed into place. A reader sees the whole folder or
    none; when a concurrent writer got there first, its finished folder is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        write(tmp)
        atomic_write_bytes(tmp / _MANIFEST, json.dumps(_file_digests(tmp), sort_keys=True).encode())
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / _MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
