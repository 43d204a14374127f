"""The on-disk store of a SISA ensemble: slice checkpoints, their manifests, and one state file.

Layout of an ensemble folder::

    state.json                                   the commit point (written last, atomically)
    assignment.json                              which ids each shard and slice was given at fit time
    checkpoints/shard-03/slice-1-<sha16>.safetensors   weights after slice 1 of shard 3
    manifests/shard-03/slice-1-<sha16>.json      what that checkpoint has seen, and its hashes
    deletions/<batch_id>.json                    the report of each committed deletion batch

A **manifest** records, for one shard and slice, the sorted ids its checkpoint has seen (slices
0..r of the shard, minus the deleted ids), their sha256, the recipe's fingerprint and the
weights' sha256 (:func:`obliviate.storage.state_sha256`). Checkpoints are pinned by the weights'
hash rather than the file's bytes: safetensors writes its header metadata in no fixed order, so
equal weights can give different bytes, while the weights' hash is the same on every machine
that trains the same shard. The **state** names the current manifest of every
shard and slice by path and sha256, the deleted ids and the committed batch ids.

Crash consistency: new checkpoints, manifests and reports are written under new names (named by
their content hash), and a change becomes real only when ``state.json`` is replaced in one
atomic write. Files the state does not reference are garbage left by an interrupted change;
:meth:`CheckpointStore.collect_garbage` removes them. One writer at a time holds
:meth:`CheckpointStore.lock`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from torch import nn

from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.storage import atomic_write_bytes, save_model, state_sha256

__all__ = [
    "FORMAT",
    "Manifest",
    "SliceRecord",
    "EnsembleState",
    "CheckpointStore",
    "ids_sha256",
    "slice_key",
    "check_batch_id",
]

FORMAT = "obliviate.sisa/1"
STATE = "state.json"
ASSIGNMENT = "assignment.json"
_LAYOUT = ("checkpoints", "manifests", "deletions")
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_STATE_FIX = (
    "restore state.json from a backup of the folder, or train the ensemble again with SISA(...).fit(data, new_folder)"
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def ids_sha256(ids: np.ndarray) -> str:
    """sha256 of the sorted ids as little-endian int64 bytes."""
    return _sha256(np.sort(np.asarray(ids, dtype="<i8")).tobytes())


def slice_key(shard: int, slice_index: int) -> str:
    """``"shard-03/slice-1"``: the name of one shard's slice in manifests and reports."""
    return f"shard-{shard:02d}/slice-{slice_index}"


def check_batch_id(batch_id: str) -> str:
    """A batch id names a file: letters, digits, ``.``, ``_`` and ``-``, at most 128 characters."""
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise InvalidInputError(
            f"batch_id must be 1-128 letters, digits, '.', '_' or '-' starting with a letter or digit, got {batch_id!r}."
        )
    return batch_id


@dataclass(frozen=True)
class Manifest:
    """What one slice checkpoint has seen and the hashes that pin it down.

    ``ids`` are the sorted ids of slices 0..``slice`` of the shard that remain; ``checkpoint``
    is ``None`` when none remain yet (the shard's weights are still its seeded initialisation).
    """

    shard: int
    slice: int
    ids: tuple[int, ...]
    ids_sha256: str
    recipe_sha256: str
    epochs: int
    seed: int
    weights_sha256: str | None
    checkpoint: str | None

    def to_bytes(self) -> bytes:
        return _canonical({**asdict(self), "ids": list(self.ids), "format": FORMAT})

    @property
    def sha256(self) -> str:
        return _sha256(self.to_bytes())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        d = json.loads(raw)
        d.pop("format", None)
        d["ids"] = tuple(int(i) for i in d["ids"])
        return cls(**d)


@dataclass(frozen=True)
class SliceRecord:
    """The state's pointer to a current manifest: its path, its sha256 and the weights' sha256."""

    manifest: str
    sha256: str
    weights_sha256: str | None


@dataclass
class EnsembleState:
    """The contents of ``state.json``: configuration, data identity, current manifests, deletions."""

    config: dict[str, Any]
    data_fingerprint: str
    input_shape: tuple[int, ...]
    num_classes: int
    assignment_sha256: str
    slices: dict[str, SliceRecord]
    deleted_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    batches: list[str] = field(default_factory=list)
    generation: int = 0

    def to_bytes(self) -> bytes:
        return _canonical(
            {
                "format": FORMAT,
                "config": self.config,
                "data_fingerprint": self.data_fingerprint,
                "input_shape": list(self.input_shape),
                "num_classes": self.num_classes,
                "assignment_sha256": self.assignment_sha256,
                "slices": {k: asdict(v) for k, v in sorted(self.slices.items())},
                "deleted_ids": [int(i) for i in self.deleted_ids],
                "batches": list(self.batches),
                "generation": self.generation,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> EnsembleState:
        d = json.loads(raw)
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r} is not {FORMAT!r}")
        return cls(
            config=dict(d["config"]),
            data_fingerprint=str(d["data_fingerprint"]),
            input_shape=tuple(int(s) for s in d["input_shape"]),
            num_classes=int(d["num_classes"]),
            assignment_sha256=str(d["assignment_sha256"]),
            slices={str(k): SliceRecord(**v) for k, v in d["slices"].items()},
            deleted_ids=np.asarray(d["deleted_ids"], dtype=np.int64),
            batches=[str(b) for b in d["batches"]],
            generation=int(d["generation"]),
        )


class CheckpointStore:
    """Reads and writes one ensemble folder; every write is atomic, every read is verified."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    # ------------------------------------------------------------------ state
    @property
    def state_path(self) -> Path:
        return self.folder / STATE

    def has_state(self) -> bool:
        return self.state_path.exists()

    def read_state(self) -> EnsembleState:
        """The committed state; a damaged file raises :class:`CorruptCheckpointError` with the fix."""
        if not self.state_path.exists():
            raise InvalidInputError(
                f"{self.folder} holds no SISA ensemble (no {STATE}); train one with SISA(recipe).fit(data, folder)."
            )
        try:
            return EnsembleState.from_bytes(self.state_path.read_bytes())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptCheckpointError(self.state_path, f"unreadable ensemble state: {exc}; {_STATE_FIX}") from exc

    def write_state(self, state: EnsembleState) -> None:
        """Commit: one atomic replace of ``state.json``."""
        atomic_write_bytes(self.state_path, state.to_bytes())

    # ------------------------------------------------------------------ assignment
    def write_assignment(self, slices_per_shard: list[list[np.ndarray]]) -> str:
        """Store the fit-time ids of every shard's slices; returns the file's sha256."""
        raw = _canonical({"format": FORMAT, "shards": [[[int(i) for i in s] for s in shard] for shard in slices_per_shard]})
        atomic_write_bytes(self.folder / ASSIGNMENT, raw)
        return _sha256(raw)

    def read_assignment(self, sha256: str) -> list[list[np.ndarray]]:
        path = self.folder / ASSIGNMENT
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CorruptCheckpointError(path, f"the shard assignment is missing ({exc}); {_STATE_FIX}") from exc
        if _sha256(raw) != sha256:
            raise CorruptCheckpointError(path, f"the shard assignment does not match its sha256 in {STATE}; {_STATE_FIX}")
        shards = json.loads(raw)["shards"]
        return [[np.asarray(s, dtype=np.int64) for s in shard] for shard in shards]

    # ------------------------------------------------------------------ checkpoints and manifests
    def write_checkpoint(self, model: nn.Module, shard: int, slice_index: int) -> tuple[str, str]:
        """Save ``model`` as this slice's checkpoint (``ob.load_model`` opens it); returns
        (relative path, weights sha256). The name carries the weights' hash, so a rewrite can only
        replace a file the state refers to with the same weights."""
        weights = state_sha256(model.state_dict())
        rel = f"checkpoints/{slice_key(shard, slice_index)}-{weights[:16]}.safetensors"
        save_model(model, self.folder / rel)
        return rel, weights

    def write_manifest(self, manifest: Manifest) -> SliceRecord:
        raw = manifest.to_bytes()
        digest = _sha256(raw)
        rel = f"manifests/{slice_key(manifest.shard, manifest.slice)}-{digest[:16]}.json"
        atomic_write_bytes(self.folder / rel, raw)
        return SliceRecord(manifest=rel, sha256=digest, weights_sha256=manifest.weights_sha256)

    def read_manifest(self, record: SliceRecord) -> Manifest:
        """The manifest ``record`` points to; raises :class:`CorruptCheckpointError` if it does not match."""
        path = self.folder / record.manifest
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CorruptCheckpointError(path, f"manifest missing ({exc})") from exc
        if _sha256(raw) != record.sha256:
            raise CorruptCheckpointError(path, "manifest does not match its sha256 in the ensemble state")
        try:
            return Manifest.from_bytes(raw)
        except (ValueError, KeyError, TypeError) as exc:  # pragma: no cover - a matching hash means it parsed before
            raise CorruptCheckpointError(path, f"unreadable manifest: {exc}") from exc

    def checkpoint_ok(self, manifest: Manifest) -> bool:
        """Whether the manifest's checkpoint holds the weights its sha256 names (no checkpoint: trivially)."""
        try:
            return self.checkpoint_sha256(manifest) == manifest.weights_sha256
        except CorruptCheckpointError:
            return False

    def _read_checkpoint(self, manifest: Manifest) -> dict[str, torch.Tensor]:
        path = self.folder / str(manifest.checkpoint)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CorruptCheckpointError(path, f"checkpoint missing ({exc.strerror or exc})") from exc
        if not raw:
            raise CorruptCheckpointError(path, "checkpoint is empty (0 bytes)")
        try:
            return st_load(raw)
        except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
            raise CorruptCheckpointError(path, f"cannot parse: {exc}") from exc

    def checkpoint_sha256(self, manifest: Manifest) -> str | None:
        """The sha256 of the weights in the manifest's checkpoint file as it is on disk now (``None`` when the
        manifest names no checkpoint); a missing, empty or unparsable file is a :class:`CorruptCheckpointError`."""
        if manifest.checkpoint is None:
            return None
        return state_sha256(self._read_checkpoint(manifest))

    def load_weights(self, manifest: Manifest) -> dict[str, torch.Tensor]:
        """The weights of a manifest's checkpoint, verified against the manifest's sha256."""
        state = self._read_checkpoint(manifest)
        if state_sha256(state) != manifest.weights_sha256:
            raise CorruptCheckpointError(
                self.folder / str(manifest.checkpoint), "weights differ from the sha256 in their manifest"
            )
        return state

    # ------------------------------------------------------------------ deletion reports
    def report_path(self, batch_id: str) -> Path:
        return self.folder / "deletions" / f"{check_batch_id(batch_id)}.json"

    def write_report(self, batch_id: str, report: Mapping[str, Any]) -> None:
        atomic_write_bytes(self.report_path(batch_id), _canonical(dict(report)))

    def read_report(self, batch_id: str) -> dict[str, Any]:
        path = self.report_path(batch_id)
        try:
            return json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CorruptCheckpointError(path, f"the report of committed batch {batch_id!r} is unreadable: {exc}") from exc

    # ------------------------------------------------------------------ folder life cycle
    def check_new_folder(self) -> None:
        """A fit goes into a missing or empty folder, or one left by a fit that crashed before its commit."""
        if self.has_state():
            raise InvalidInputError(
                f"{self.folder} already holds a SISA ensemble; load it with SISAEnsemble.load(folder) "
                "or fit into a new folder."
            )
        if self.folder.exists():
            if not self.folder.is_dir():
                raise InvalidInputError(f"{self.folder} is a file; give a folder for the ensemble.")
            foreign = [p.name for p in self.folder.iterdir() if not self._ours(p.name)]
            if foreign:
                raise InvalidInputError(
                    f"{self.folder} is not empty ({', '.join(sorted(foreign)[:5])}); fit into an empty or new folder."
                )

    @staticmethod
    def _ours(name: str) -> bool:
        return name in (*_LAYOUT, ASSIGNMENT, ".lock") or (name.startswith(".") and name.endswith(".tmp"))

    def collect_garbage(self, state: EnsembleState) -> list[Path]:
        """Remove files the committed state does not reference (left by an interrupted change).

        A slice whose manifest is damaged is rebuilt by the next change, so its old checkpoint
        is not needed either.
        """
        keep = {self.folder / r.manifest for r in state.slices.values()}
        keep |= {self.folder / "deletions" / f"{b}.json" for b in state.batches}
        for record in state.slices.values():
            try:
                manifest = self.read_manifest(record)
            except CorruptCheckpointError:
                continue
            if manifest.checkpoint is not None:
                keep.add(self.folder / manifest.checkpoint)
        removed = []
        for sub in _LAYOUT:
            for path in sorted((self.folder / sub).rglob("*")) if (self.folder / sub).exists() else ():
                if path.is_file() and path not in keep:
                    path.unlink(missing_ok=True)
                    removed.append(path)
        for tmp in self.folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        return removed

    @contextmanager
    def lock(self, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the folder's writer lock; yields whether it was acquired (always, when ``blocking``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

