"""What the ledger deletes from: a SISA ensemble folder, or a saved model file and an unlearner.

A target runs one batch deletion (:meth:`delete`, idempotent under its batch id: a batch that was
already committed returns its recorded deletion without work, which is how a rerun after a crash
recovers the evidence), measures evidence on the current model, and answers the verifier (its
current hash, and which ids it still holds).

- :class:`SisaTarget` deletes exactly: ``SISAEnsemble.delete(ids, data, batch_id=...)`` retrains
  the affected shards from the checkpoint before their first affected slice; the rebuilt shards are
  models trained without the ids, i.e. their own oracle.
- :class:`ModelTarget` runs any registered unlearner on a model file and replaces the file
  atomically, recording ``forgotten_ids`` (as ``obliviate unlearn`` does), the batch id and the
  deletion record in its header.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError

__all__ = ["Deletion", "Target", "SisaTarget", "ModelTarget", "evidence_for"]


@dataclass
class Deletion:
    """What one batch deletion did, as recorded by the target (JSON-able)."""

    batch_id: str
    method: str
    guarantee: str
    removed_ids: list[int]
    already_deleted_ids: list[int]
    model_sha256_before: str
    model_sha256_after: str
    seconds: float
    shards_rebuilt: list[int] = field(default_factory=list)
    slices_rebuilt: Any = None
    manifests_before: Any = None
    manifests_after: Any = None
    model_files: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    recovered: bool = False  # the batch had been committed before; nothing was redone

    def to_dict(self) -> dict:
        return asdict(self)


def evidence_for(model: nn.Module, forget: Dataset, *, retain: Dataset, test: Dataset | None, seed: int) -> dict:
    """Forget/retain (and test) accuracy of ``model``; MIA-Efficacy when a test split is given.

    MIA-Efficacy (Jia et al. NeurIPS 2023, Sec. 5): the share of forget examples a confidence-based
    SVC, trained on retain (members) against test (non-members), calls non-members; see
    :func:`obliviate.evaluation.mia_efficacy`.
    """
    from obliviate.evaluation import accuracy, mia_efficacy, predict_logits, true_class_probability

    def confidence(data: Dataset) -> np.ndarray:
        return true_class_probability(predict_logits(model, data), data.y)

    out: dict[str, Any] = {"forget_examples": len(forget), "forget_accuracy": accuracy(model, forget)}
    out["retain_accuracy"] = accuracy(model, retain)
    if test is not None:
        out["test_accuracy"] = accuracy(model, test)
        out["mia_efficacy"] = mia_efficacy(confidence(retain), confidence(test), confidence(forget))
    return out


class Target:
    """Interface of a deletion target (see the module docstring)."""

    kind = ""

    def describe(self) -> dict:
        raise NotImplementedError

    def data_fingerprint(self) -> str | None:
        raise NotImplementedError

    def delete(self, ids: np.ndarray, data: Dataset, *, batch_id: str) -> Deletion:
        raise NotImplementedError

    def module(self) -> nn.Module:
        raise NotImplementedError

    def deleted_ids(self) -> set[int]:
        """Every id removed so far."""
        raise NotImplementedError

    def current_sha256(self) -> str:
        raise NotImplementedError

    def weights_on_disk(self) -> tuple[str | None, dict[str, str]]:
        """The model's sha256 recomputed from the weights in its file(s) as they are on disk now (``None``
        when unreadable) and ``{file or slice: problem}`` for everything that is not what was recorded."""
        raise NotImplementedError

    def ids_still_present(self, ids: list[int]) -> list[int]:
        """Those of ``ids`` that the current model still holds (the verifier wants none)."""
        raise NotImplementedError

    def evidence(self, forget_ids: list[int], data: Dataset, *, test: Dataset | None, seed: int) -> dict:
        retain = data.without(np.asarray(sorted(self.deleted_ids()), dtype=np.int64))
        return evidence_for(self.module(), data.subset(forget_ids), retain=retain, test=test, seed=seed)

    def details_for(self, deletion: Deletion, forget_ids: list[int]) -> dict:
        """The part of the batch's ``deletion.details`` that goes into the certificate of the request that asked
        for ``forget_ids`` (default: all of it; a document store keeps only the copies of that request's ids)."""
        return dict(deletion.details)

    def replayed_sha256(self, cert: dict) -> tuple[str | None, str]:
        """The target's hash as it was right after ``cert``'s batch, recomputed from what it holds now, and how;
        ``(None, why)`` where it cannot be. Only a target that changes outside the ledger (a document store, where
        documents are added every day) needs it: the model hash check accepts this hash equal to the certified one
        when the hash chain of later batches does not reach the current hash."""
        return None, f"a {self.kind} target changes only through certified batches"


class SisaTarget(Target):
    """A SISA ensemble folder (``obliviate.exact.SISAEnsemble``), loaded with its hashes checked."""

    kind = "sisa"

    def __init__(self, folder: str | Path, *, backend: str = "local", address: str | None = None) -> None:
        from obliviate.exact import SISAEnsemble

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InvalidInputError(
                f"--sisa {self.folder} is not a folder; give the folder SISA(...).fit(data, folder) wrote."
            )
        self.backend, self.address = backend, address
        self.ensemble = SISAEnsemble.load(self.folder)
        self._on_disk: tuple[tuple, tuple[str | None, dict[str, str]]] | None = None

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.folder.resolve()), "shards": len(self.ensemble.manifests())}

    def data_fingerprint(self) -> str | None:
        return self.ensemble.data_fingerprint

    def delete(self, ids: np.ndarray, data: Dataset, *, batch_id: str) -> Deletion:
        report = self.ensemble.delete(ids, data, batch_id=batch_id, backend=self.backend, address=self.address)
        record = report.to_dict()
        return Deletion(
            batch_id=batch_id,
            method="sisa",
            guarantee="exact",
            removed_ids=sorted(int(i) for i in record["removed_ids"]),
            already_deleted_ids=sorted(int(i) for i in record["already_deleted_ids"]),
            model_sha256_before=record["model_sha256_before"],
            model_sha256_after=record["model_sha256_after"],
            seconds=float(record["seconds"]),
            shards_rebuilt=[int(s) for s in record["shards_rebuilt"]],
            slices_rebuilt=record["slices_rebuilt"],
            manifests_before=record["manifests_before"],
            manifests_after=record["manifests_after"],
            model_files=dict(record["manifests_after"]),  # each manifest pins its checkpoint's weights sha256
            details={
                "oracle": "exact: every rebuilt shard is retrained from scratch without the ids",
                "slices_repaired": record.get("slices_repaired", {}),
                "gradient_steps": int(record.get("gradient_steps", 0)),
            },
            recovered=bool(record.get("recovered", False)),
        )

    def module(self) -> nn.Module:
        return self.ensemble.module()

    def deleted_ids(self) -> set[int]:
        return {int(i) for i in self.ensemble.deleted_ids()}

    def current_sha256(self) -> str:
        return self.ensemble.model_sha256()

    def weights_on_disk(self) -> tuple[str | None, dict[str, str]]:
        """Every current checkpoint re-read and hashed (:meth:`SISAEnsemble.weights_on_disk`).

        Verifying many certificates against one target re-reads the folder only when a file in it
        changed since the last read (its inode, size, mtime or ctime; any write changes the ctime)."""
        key = self._files_stat()
        if self._on_disk is None or self._on_disk[0] != key:
            self._on_disk = (key, self.ensemble.weights_on_disk())
        return self._on_disk[1]

    def _files_stat(self) -> tuple:
        out = []
        for path in sorted(self.folder.rglob("*")):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        return tuple(out)

    def ids_still_present(self, ids: list[int]) -> list[int]:
        present = {int(i) for i in self.ensemble.manifest_ids()}
        return sorted(set(int(i) for i in ids) & present)


class ModelTarget(Target):
    """A model file saved by obliviate, unlearned in place with ``method`` (any registered unlearner).

    The file's header records the training data's fingerprint and every id forgotten so far; the
    retain set of each batch is the data minus all of them, so no later batch brings an id back.
    """

    kind = "model"

    def __init__(
        self, path: str | Path, *, method: str = "finetune", settings: dict | None = None, seed: int = 0
    ) -> None:
        from obliviate.storage import check_regular_target, load_model, read_metadata
        from obliviate.unlearning import make_method

        self.path = Path(path)
        check_regular_target(self.path, what="--model")  # a symlink or device is refused before any request changes
        if not self.path.is_file():
            raise InvalidInputError(
                f"--model {self.path} does not exist; train one with `obliviate train --out {self.path}`."
            )
        self.guarantee = str(make_method(method, settings).guarantee)  # unknown methods and settings fail here
        self.method, self.settings, self.seed = method, dict(settings or {}), int(seed)
        self.meta = read_metadata(self.path)
        self.model = load_model(self.path)

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path.resolve()), "method": self.method, "settings": self.settings}

    def data_fingerprint(self) -> str | None:
        return self.meta.get("data_fingerprint")

    @property
    def data_name(self) -> str | None:
        return self.meta.get("data")

    def deleted_ids(self) -> set[int]:
        return {int(i) for i in json.loads(self.meta.get("forgotten_ids", "[]"))}

    def current_sha256(self) -> str:
        return self.meta["obliviate.sha256"]

    def weights_on_disk(self) -> tuple[str | None, dict[str, str]]:
        """The file re-read now and its tensors hashed (not the header's ``obliviate.sha256`` field)."""
        from safetensors.torch import load as st_load

        from obliviate.storage import state_sha256

        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            return None, {str(self.path): f"unreadable ({exc.strerror or exc})"}
        try:
            digest = state_sha256(st_load(raw))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
            return None, {str(self.path): f"not a readable safetensors file ({exc})"}
        try:
            (length,) = struct.unpack("<Q", raw[:8])
            recorded = (json.loads(raw[8 : 8 + length]).get("__metadata__") or {}).get("obliviate.sha256")
        except (ValueError, AttributeError, struct.error):  # pragma: no cover - st_load parsed the same header
            recorded = None
        if digest != recorded:
            return digest, {str(self.path): f"weights sha256 {digest[:16]}... differ from the {str(recorded)[:16]}... in its header"}
        return digest, {}

    def module(self) -> nn.Module:
        return self.model

    def ids_still_present(self, ids: list[int]) -> list[int]:
        return sorted(set(int(i) for i in ids) - self.deleted_ids())

    def delete(self, ids: np.ndarray, data: Dataset, *, batch_id: str) -> Deletion:
        from obliviate.evaluation import accuracy
        from obliviate.request import ForgetRequest
        from obliviate.storage import load_model, read_metadata, save_model, spec_of, state_sha256
        from obliviate.training.recipe import Recipe
        from obliviate.unlearning import unlearn

        if self.meta.get("ledger_batch_id") == batch_id:  # committed before a crash: recover the record
            return Deletion(**{**json.loads(self.meta["ledger_deletion"]), "recovered": True})
        started = time.perf_counter()
        wanted = sorted({int(i) for i in ids})
        data.positions(wanted)  # UnknownIdsError for ids never in the training data
        forgotten = self.deleted_ids()
        already = sorted(set(wanted) & forgotten)
        fresh = sorted(set(wanted) - forgotten)
        before = self.current_sha256()
        deletion = Deletion(
            batch_id=batch_id,
            method=self.method,
            guarantee="",
            removed_ids=fresh,
            already_deleted_ids=already,
            model_sha256_before=before,
            model_sha256_after=before,
            seconds=0.0,
            model_files={self.path.name: before},
        )
        if not fresh:  # every id was forgotten by an earlier batch: nothing to do
            deletion.guarantee = self.guarantee
            return deletion
        current = data.without(np.asarray(sorted(forgotten), dtype=np.int64)) if forgotten else data
        spec = spec_of(self.model)
        recipe = Recipe.from_dict(spec["recipe"]) if spec else None
        request = ForgetRequest(ids=fresh)
        result = unlearn(
            self.model, request, current, method=self.method, settings=self.settings, seed=self.seed, recipe=recipe
        )
        forget_set = current.subset(fresh)
        deletion.guarantee = str(result.guarantee)
        deletion.details = {
            "settings": result.config,
            "cost": result.cost.to_dict(),
            "forget_accuracy_before": accuracy(self.model, forget_set),
        }
        deletion.seconds = time.perf_counter() - started
        # the record travels in the model file's header, so a rerun of this batch after a crash finds it
        after = state_sha256(result.model.state_dict())
        deletion.model_sha256_after = after
        deletion.model_files = {self.path.name: after}
        save_model(
            result.model,
            self.path,
            metadata={
                "data": self.meta.get("data", ""),
                "data_fingerprint": data.fingerprint,
                "forgotten_ids": sorted(forgotten | set(fresh)),
                "source_model_sha256": before,
                "request": request.to_dict(),
                "method": result.method,
                "settings": result.config,
                "cost": result.cost.to_dict(),
                "ledger_batch_id": batch_id,
                "ledger_deletion": json.dumps(deletion.to_dict(), sort_keys=True),
            },
        )
        self.meta = read_metadata(self.path)
        self.model = load_model(self.path)
        return deletion
