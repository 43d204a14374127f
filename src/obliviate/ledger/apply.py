"""Apply every due request in one batch and issue a signed certificate for each.

The steps, each crash-safe::

    1. lock the ledger against a second apply (flock; the kernel drops it if we die)
    2. finish any batch an earlier apply left scheduled (same batch id, same requests)
    3. resolve the received requests against the data; unknown ids/owners -> failed (with the reason)
    4. mark the rest scheduled under a new batch id        (one transaction)
    5. run the deletion: target.delete(all their ids, batch_id=...)   (the target commits atomically,
       and a batch it already committed is returned from its record without work)
    6. sign one certificate per request; store them and mark the requests applied (one transaction)
    7. write the certificate files atomically (re-exported on the next apply if we die before)

So a request is applied exactly when its certificate is in the ledger; a kill at any point
leaves requests received, scheduled (finished by the next apply, without deleting twice) or
applied with a certificate. A typed error of the request (unknown ids, forgetting everything)
marks it failed with the message; a damaged checkpoint stops the apply with the requests still
scheduled, so they are applied once the checkpoint is restored.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from obliviate.data.dataset import Dataset
from obliviate.errors import CorruptCheckpointError, InvalidInputError, ObliviateError
from obliviate.ledger.certificate import certificate_path, sign_certificate, write_certificate
from obliviate.ledger.keys import load_or_create_key
from obliviate.ledger.store import APPLIED, FAILED, SCHEDULED, Ledger, LedgerRequest, utc_now
from obliviate.ledger.targets import Deletion, Target

__all__ = ["apply", "ApplyOutcome", "BatchOutcome", "ApplyInProgressError", "export_certificates"]


class ApplyInProgressError(InvalidInputError):
    """Another ``apply`` holds this ledger's lock."""


@dataclass
class BatchOutcome:
    """One batch: the requests applied (with their certificate paths) and those that failed."""

    batch_id: str
    applied: list[tuple[LedgerRequest, Path, dict]] = field(default_factory=list)
    failed: list[tuple[LedgerRequest, str]] = field(default_factory=list)
    deletion: Deletion | None = None
    resumed: bool = False
    seconds: float = 0.0


@dataclass
class ApplyOutcome:
    """Everything one ``apply`` did; ``batches`` is empty when nothing was due."""

    batches: list[BatchOutcome] = field(default_factory=list)
    failed_before_scheduling: list[tuple[LedgerRequest, str]] = field(default_factory=list)

    @property
    def applied(self) -> list[tuple[LedgerRequest, Path, dict]]:
        return [a for b in self.batches for a in b.applied]

    @property
    def failed(self) -> list[tuple[LedgerRequest, str]]:
        return self.failed_before_scheduling + [f for b in self.batches for f in b.failed]

    @property
    def nothing_due(self) -> bool:
        return not self.batches and not self.failed_before_scheduling


@contextmanager
def _apply_lock(folder: Path) -> Iterator[None]:
    with open(folder / "apply.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ApplyInProgressError(
                f"another `obliviate apply` is running on the ledger {folder}; wait for it to finish and run again."
            ) from exc
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def export_certificates(ledger: Ledger) -> list[Path]:
    """Write the file of every stored certificate that has none (after a crash between 6 and 7), and
    remove the temporary files of writes a crash cut short. Call it under the apply lock."""
    folder = ledger.folder / "certificates"
    for stale in folder.glob(".*.tmp") if folder.is_dir() else ():
        stale.unlink(missing_ok=True)
    written = []
    for request_id, body in ledger.certificates().items():
        path = certificate_path(ledger.folder, request_id)
        if not path.exists():
            written.append(write_certificate(path, json.loads(body)))
    return written


def _new_batch_id() -> str:
    return f"batch-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _check_data(target: Target, data: Dataset) -> None:
    expected = target.data_fingerprint()
    if expected and expected != data.fingerprint:
        raise InvalidInputError(
            f"the {target.kind} target was trained on data with fingerprint {expected[:16]}..., not the given data "
            f"({data.fingerprint[:16]}...); pass the exact training data (same ids, features and labels)."
        )


def apply(
    ledger: Ledger,
    target: Target,
    data: Dataset,
    *,
    test: Dataset | None = None,
    seed: int = 0,
    now: datetime | None = None,
) -> ApplyOutcome:
    """Apply every due request of ``ledger`` to ``target`` in one batch; see the module docstring.

    ``data`` is the target's full training set (ids as in the requests); ``test``, when given, adds
    test accuracy and MIA-Efficacy to the evidence. ``now`` fixes the time used for the overdue flag.
    """
    if not isinstance(ledger, Ledger):
        raise InvalidInputError(f"ledger must be an obliviate.ledger.Ledger, got {type(ledger).__name__}.")
    if not isinstance(target, Target):
        raise InvalidInputError(f"target must be a SisaTarget or ModelTarget, got {type(target).__name__}.")
    if not isinstance(data, Dataset) or (test is not None and not isinstance(test, Dataset)):
        raise InvalidInputError("data (and test) must be obliviate Datasets; load them with obliviate.data.")
    _check_data(target, data)
    outcome = ApplyOutcome()
    with _apply_lock(ledger.folder):
        key = load_or_create_key(ledger.folder)
        export_certificates(ledger)
        for batch_id, requests in ledger.pending_batches().items():
            outcome.batches.append(
                _run_batch(ledger, target, data, batch_id, requests, key, test=test, seed=seed, now=now, resumed=True)
            )
        scheduled, resolved = [], {}
        for request in ledger.due():
            try:
                resolved[request.request_id] = request.to_request().resolve(data).tolist()
                scheduled.append(request)
            except ObliviateError as exc:  # unknown ids or owners, nothing left to retain: the request's fault
                ledger.transition([request.request_id], FAILED, reason=str(exc))
                outcome.failed_before_scheduling.append((ledger.get(request.request_id), str(exc)))
        if scheduled:
            batch_id = _new_batch_id()
            ids = [r.request_id for r in scheduled]
            scheduled = ledger.transition(ids, SCHEDULED, batch_id=batch_id, resolved_ids=resolved)
            outcome.batches.append(
                _run_batch(ledger, target, data, batch_id, scheduled, key, test=test, seed=seed, now=now)
            )
    return outcome


def _run_batch(
    ledger: Ledger,
    target: Target,
    data: Dataset,
    batch_id: str,
    requests: list[LedgerRequest],
    key,
    *,
    test: Dataset | None,
    seed: int,
    now: datetime | None,
    resumed: bool = False,
) -> BatchOutcome:
    started = time.perf_counter()
    out = BatchOutcome(batch_id=batch_id, resumed=resumed)
    request_ids = [r.request_id for r in requests]
    all_ids = np.asarray(sorted({i for r in requests for i in (r.resolved_ids or ())}), dtype=np.int64)
    try:
        deletion = target.delete(all_ids, data, batch_id=batch_id)
    except CorruptCheckpointError:
        raise  # not the requests' fault: they stay scheduled and are applied once the checkpoint is restored
    except ObliviateError as exc:
        ledger.transition(request_ids, FAILED, reason=str(exc))
        out.failed = [(ledger.get(rid), str(exc)) for rid in request_ids]
        out.seconds = time.perf_counter() - started
        return out
    out.deletion = deletion
    applied_at = (now or utc_now()).isoformat()
    removed_now, already = set(deletion.removed_ids), set(deletion.already_deleted_ids)
    bodies: dict[str, dict] = {}
    for request in requests:
        ids = list(request.resolved_ids or ())
        evidence = target.evidence(ids, data, test=test, seed=seed)
        evidence.update(deletion.details)
        overdue = (now or utc_now()) > request.deadline
        bodies[request.request_id] = {
            "request": request.to_dict() | {"status": APPLIED},
            "batch_id": batch_id,
            "batch_requests": request_ids,
            "removed_ids": ids,
            "removed_by_this_batch": sorted(set(ids) & removed_now),
            "already_deleted_ids": sorted(set(ids) & already),
            "method": deletion.method,
            "guarantee": deletion.guarantee,
            "target": target.describe(),
            "data_fingerprint": data.fingerprint,
            "rebuilt": {"shards": deletion.shards_rebuilt, "slices": deletion.slices_rebuilt},
            "manifests": {"before": deletion.manifests_before, "after": deletion.manifests_after},
            "model": {
                "sha256_before": deletion.model_sha256_before,
                "sha256": deletion.model_sha256_after,
                "files": deletion.model_files,
            },
            "evidence": evidence,
            "seconds": {"deletion": deletion.seconds, "batch": time.perf_counter() - started},
            "overdue": overdue,
            "deadline": request.deadline.isoformat(),
            "applied_at": applied_at,
            "created_at": utc_now().isoformat(),
        }
    signed = {rid: sign_certificate(body, key) for rid, body in bodies.items()}
    stored = ledger.transition(
        request_ids, APPLIED, certificates={rid: json.dumps(cert, sort_keys=True) for rid, cert in signed.items()}
    )
    for request in stored:
        path = write_certificate(certificate_path(ledger.folder, request.request_id), signed[request.request_id])
        out.applied.append((request, path, signed[request.request_id]))
    out.seconds = time.perf_counter() - started
    return out
