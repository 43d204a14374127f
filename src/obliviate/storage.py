"""Durable model files: atomic writes and self-verifying safetensors checkpoints.

A write goes to a temporary file in the target folder, is fsynced, renamed over the target and
the folder is fsynced, so a crash leaves either the old file or the new one, never half of one.
Each checkpoint records the sha256 of its tensors in its header; loading recomputes it, so a
truncated or altered file raises :class:`CorruptCheckpointError` instead of being loaded.

This module sits below the model builders and the trainer (they write files through it), so it
imports neither: :mod:`obliviate.training` registers how a model is rebuilt from its spec and
which architectures must not be saved (:func:`register_model_files`) when it is imported, which
``import obliviate`` always does.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from obliviate.errors import CorruptCheckpointError, InvalidInputError

__all__ = [
    "ModelSpec",
    "atomic_write_bytes",
    "check_regular_target",
    "state_sha256",
    "save_model",
    "load_model",
    "read_metadata",
    "attach_spec",
    "spec_of",
    "register_model_files",
]

_SPEC_ATTR = "_obliviate_spec"
_REBUILD: list[Callable[[ModelSpec], nn.Module]] = []
_NOT_SAVED: set[str] = set()


def register_model_files(*, rebuild: Callable[[ModelSpec], nn.Module], not_saved: Collection[str] = ()) -> None:
    """How :func:`load_model` rebuilds a module from its spec (``rebuild(spec)``: built, spec attached,
    weights not loaded) and the architectures :func:`save_model` refuses (``not_saved``)."""
    _REBUILD[:] = [rebuild]
    _NOT_SAVED.update(not_saved)


def check_regular_target(path: str | Path, *, what: str = "the output path") -> None:
    """Raise :class:`InvalidInputError` unless ``path`` is absent or a regular file (not followed if a link).

    A write renames a new file over the target, so a symlink, a device (``/dev/null``), a folder or a
    pipe would be replaced rather than written through; each is refused instead."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InvalidInputError(f"{what} {path} cannot be checked ({exc.strerror or exc}); choose another.") from exc
    if stat.S_ISREG(st.st_mode):
        return
    kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket")]
    kind = next((name for test, name in kinds if test(st.st_mode)), "not a regular file")
    raise InvalidInputError(
        f"{what} {path} is {kind}; obliviate writes a new regular file there and will not replace it. "
        "Give the path of a (new or existing) regular file."
    )


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync of the folder.

    ``path`` must be absent or a regular file: a symlink, device, folder or pipe there raises
    :class:`InvalidInputError` before anything is written."""
    path = Path(path)
    check_regular_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    # os.open with 0o666 lets the umask decide, like open(path, "wb") would (mkstemp forces 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over tensor names, dtypes, shapes and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        # reshape(-1): a 0-d tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class ModelSpec(dict):
    """What is needed to rebuild a module: architecture name, input shape, classes, options, recipe."""


def attach_spec(model: nn.Module, *, recipe: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    spec = ModelSpec(
        model=recipe.model,
        input_shape=list(input_shape),
        num_classes=int(num_classes),
        options=recipe.options,
        recipe=recipe.to_dict(),
    )
    setattr(model, _SPEC_ATTR, spec)
    return model


def spec_of(model: nn.Module) -> ModelSpec | None:
    return getattr(model, _SPEC_ATTR, None)


def save_model(model: nn.Module, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> str:
    """Save ``model``'s state atomically as safetensors; returns the weights' sha256.

    The header stores the weights' sha256, the model spec (if the model was built by
    obliviate, so :func:`load_model` can rebuild it) and any extra JSON ``metadata``.
    """
    spec = spec_of(model)
    if spec is not None and spec.get("model") in _NOT_SAVED:
        raise InvalidInputError(
            f"a {spec['model']!r} model is not saved to a file: its state holds the secret noise of its certificate "
            "and certificate state a checkpoint cannot restore. Keep it in memory, or refit it from its recipe."
        )
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    digest = state_sha256(state)
    meta = {"obliviate.sha256": digest}
    if spec is not None:
        meta["obliviate.spec"] = json.dumps(spec, sort_keys=True)
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    atomic_write_bytes(path, st_save(state, metadata=meta))
    return digest


def _parse(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"no model file at {path}.") from exc
    except IsADirectoryError as exc:
        raise InvalidInputError(f"{path} is a folder; give the path of a .safetensors model file.") from exc
    except OSError as exc:
        raise CorruptCheckpointError(path, f"unreadable: {exc}") from exc
    if len(raw) < 8:
        raise CorruptCheckpointError(path, "file shorter than a safetensors header")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8:
        raise CorruptCheckpointError(path, "truncated header")
    try:
        header = json.loads(raw[8 : 8 + header_len])
        meta = header.get("__metadata__", {}) or {}
        state = st_load(raw)
    except Exception as exc:  # noqa: BLE001 - any parse failure means corrupt
        raise CorruptCheckpointError(path, f"cannot parse: {exc}") from exc
    expected = meta.get("obliviate.sha256")
    if expected is None:
        raise CorruptCheckpointError(path, "no obliviate.sha256 in header; not written by obliviate")
    if state_sha256(state) != expected:
        raise CorruptCheckpointError(path, "weights do not match the sha256 recorded in the header")
    return state, meta


def read_metadata(path: str | Path) -> dict[str, str]:
    """The verified header metadata of a checkpoint."""
    return _parse(Path(path))[1]


def load_model(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load a checkpoint into ``model`` or, when omitted, into a rebuilt obliviate model.

    Raises :class:`CorruptCheckpointError` if the file is truncated, altered or not ours.
    """
    path = Path(path)
    state, meta = _parse(path)
    rebuilt = model is None
    if model is None:
        if "obliviate.spec" not in meta:
            raise CorruptCheckpointError(path, "no model spec in header; pass the module to load into")
        if not _REBUILD:
            raise InvalidInputError("no model builder is registered to rebuild a checkpoint: import obliviate first.")
        try:
            spec = ModelSpec(json.loads(meta["obliviate.spec"]))
            model = _REBUILD[0](spec)
            if "privacy" in spec:  # a DP model's spent-privacy record travels with it
                spec_of(model)["privacy"] = spec["privacy"]
        except (ValueError, KeyError, TypeError) as exc:  # the header's spec is damaged (typed errors included)
            raise CorruptCheckpointError(path, f"unreadable model spec in header: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
        if rebuilt:  # the header's spec and the tensors disagree: the file is damaged
            raise CorruptCheckpointError(path, f"tensors do not fit the model spec in the header: {exc}") from exc
        raise InvalidInputError(
            f"checkpoint {path} does not fit the given {type(model).__name__}: {exc}. "
            "Pass a module of the architecture it was saved from, or omit model= to rebuild it."
        ) from exc
    return model.eval()
