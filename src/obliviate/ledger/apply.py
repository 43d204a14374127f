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

Before step 1 every argument is checked (the data's fingerprint, the backend, the seed, a test
split's features and labels), so a mistake in them changes no request. A full disk stops the apply
with :class:`~obliviate.ledger.store.LedgerDiskFullError`; the next apply finishes the work. The
certificates folder is mode 0700 and each certificate file 0600, whatever the umask; a certificate
is only ever written inside it.

Test hook: with ``OBLIVIATE_CRASH_AT=<point>`` in the environment, :func:`crash_point` kills the
process with SIGKILL at that point (one of :data:`CRASH_POINTS`), so a test can stop ``apply`` exactly
in a narrow window (``tests/ledger/test_crash_windows.py``). Unset, it does nothing.
"""

from __future__ import annotations

import errno
import fcntl
import importlib.util
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from obliviate.data.dataset import Dataset
from obliviate.errors import (
    ApplyInProgressError,
    CorruptCheckpointError,
    InvalidInputError,
    ObliviateError,
)
from obliviate.ledger.certificate import certificate_path, sign_certificate, write_certificate
from obliviate.ledger.keys import load_or_create_key
from obliviate.ledger.store import (
    APPLIED,
    FAILED,
    SCHEDULED,
    Ledger,
    LedgerDiskFullError,
    LedgerRequest,
    check_ledger_request_id,
    utc_now,
)
from obliviate.ledger.targets import Deletion, SisaTarget, Target

__all__ = [
    "apply",
    "ApplyOutcome",
    "BatchOutcome",
    "ApplyInProgressError",
    "export_certificates",
    "crash_point",
    "CRASH_ENV",
    "CRASH_POINTS",
    "MAX_SEED",
]

#: The environment variable of the crash test hook (see the module docstring).
CRASH_ENV = "OBLIVIATE_CRASH_AT"
#: Where :func:`crash_point` can stop ``apply``: after the scheduling transaction; inside the target's
#: deletion (called by a test's wrapper of the retraining); after the target committed the deletion;
#: after the ledger marked the batch applied, before any certificate file; after the first file.
CRASH_POINTS = ("scheduled", "retrain", "deleted", "ledger-committed", "certificate-written")
MAX_SEED = 2**32 - 1


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process if ``$OBLIVIATE_CRASH_AT`` is ``name``; otherwise nothing."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


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
    fd = os.open(folder / "apply.lock", os.O_WRONLY | os.O_CREAT, 0o600)  # private whatever the umask
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ApplyInProgressError(
                f"another `obliviate apply` is running on the ledger {folder}; wait for it to finish and run again."
            ) from exc
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def _certificates_folder(ledger: Ledger) -> Path:
    """``<ledger>/certificates``, created mode 0700 (tightened if looser)."""
    folder = ledger.folder / "certificates"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def _certificate_file(ledger: Ledger, request_id: str) -> Path:
    """Where ``request_id``'s certificate goes: always a direct child of the certificates folder."""
    check_ledger_request_id(request_id)
    path = certificate_path(ledger.folder, request_id)
    folder = (ledger.folder / "certificates").resolve()
    if path.parent.resolve() != folder or path.name != f"{request_id}.json":
        raise InvalidInputError(f"request id {request_id!r} would place its certificate outside {folder}.")
    return path


def _write_certificate_file(ledger: Ledger, request_id: str, cert: dict) -> Path:
    _certificates_folder(ledger)
    path = write_certificate(_certificate_file(ledger, request_id), cert)
    os.chmod(path, 0o600)
    return path


def export_certificates(ledger: Ledger) -> list[Path]:
    """Write the file of every stored certificate that has none (after a crash between 6 and 7), and
    remove the temporary files of writes a crash cut short. Call it under the apply lock."""
    folder = ledger.folder / "certificates"
    for stale in folder.glob(".*.tmp") if folder.is_dir() else ():
        stale.unlink(missing_ok=True)
    written = []
    for request_id, body in ledger.certificates().items():
        path = _certificate_file(ledger, request_id)
        if not path.exists():
            written.append(_write_certificate_file(ledger, request_id, json.loads(body)))
    return written


def _new_batch_id() -> str:
    return f"batch-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _check_data(target: Target, data: Dataset) -> None:
    expected = target.data_fingerprint()
    if expected and expected != data.fingerprint:
        raise InvalidInputError(
            f"the {target.kind} target was trained on data with fingerprint {expected[:16]}..., not the given data "
            f"({data.fingerprint[:16]}...); pass the exact training data (same ids, features, labels and owners)."
        )


def _check_flags(target: Target, data: Dataset, test: Dataset | None, seed: object) -> None:
    """Every argument error that would otherwise surface mid-batch, found before any request changes."""
    for name, value in (("seed", seed), ("the target's seed", getattr(target, "seed", 0))):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= int(value) <= MAX_SEED:
            raise InvalidInputError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {value!r}.")
    if isinstance(target, SisaTarget):
        from obliviate.parallel import check_backend

        check_backend(target.backend, target.address)
        if target.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise InvalidInputError("--backend ray needs Ray: pip install 'obliviate[ray]' (or use --backend local).")
    if test is not None:
        if tuple(test.input_shape) != tuple(data.input_shape):
            raise InvalidInputError(
                f"the test split has features of shape {tuple(test.input_shape)}, the training data "
                f"{tuple(data.input_shape)}; pass a test split of the same task (e.g. --test digits for digits)."
            )
        classes = int(data.num_classes) or int(np.max(data.y)) + 1
        if len(test) and (int(np.min(test.y)) < 0 or int(np.max(test.y)) >= classes):
            raise InvalidInputError(
                f"the test split has labels outside 0..{classes - 1}, the classes the model was trained on."
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
        raise InvalidInputError(
            "target must be a SisaTarget or ModelTarget (or a SummationTarget, or for a document store "
            f"obliviate.retrieval.ledger_target.StoreTarget), got {type(target).__name__}."
        )
    if not isinstance(data, Dataset) or (test is not None and not isinstance(test, Dataset)):
        raise InvalidInputError("data (and test) must be obliviate Datasets; load them with obliviate.data.")
    _check_data(target, data)
    _check_flags(target, data, test, seed)
    try:
        return _apply_locked(ledger, target, data, test=test, seed=int(seed), now=now)
    except OSError as exc:
        if exc.errno == errno.ENOSPC and not isinstance(exc, LedgerDiskFullError):
            raise LedgerDiskFullError(
                exc.filename or ledger.folder,
                "apply stopped; requests already applied keep their certificates in the ledger, the others stay "
                "scheduled or received, and the next apply finishes them",
            ) from exc
        raise


def _apply_locked(
    ledger: Ledger, target: Target, data: Dataset, *, test: Dataset | None, seed: int, now: datetime | None
) -> ApplyOutcome:
    outcome = ApplyOutcome()
    with ledger.apply_lock():
        key = load_or_create_key(ledger)  # the pinned key (created and pinned on first use)
        export_certificates(ledger)
        for batch_id, requests in ledger.pending_batches().items():
            outcome.batches.append(
                _run_batch(ledger, target, data, batch_id, requests, key, test=test, seed=seed, now=now, resumed=True)
            )
        scheduled, resolved = [], {}
        for request in ledger.due():
            try:
                check_ledger_request_id(request.request_id)  # it names the certificate file
                resolved[request.request_id] = request.to_request().resolve(data).tolist()
                scheduled.append(request)
            except ObliviateError as exc:  # unknown ids or owners, nothing left to retain: the request's fault
                ledger.transition([request.request_id], FAILED, reason=str(exc))
                outcome.failed_before_scheduling.append((ledger.get(request.request_id), str(exc)))
        if scheduled:
            batch_id = _new_batch_id()
            ids = [r.request_id for r in scheduled]
            scheduled = ledger.transition(ids, SCHEDULED, batch_id=batch_id, resolved_ids=resolved)
            crash_point("scheduled")
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
    crash_point("deleted")
    out.deletion = deletion
    applied_at = (now or utc_now()).isoformat()
    removed_now, already = set(deletion.removed_ids), set(deletion.already_deleted_ids)
    bodies: dict[str, dict] = {}
    for request in requests:
        ids = list(request.resolved_ids or ())
        evidence = target.evidence(ids, data, test=test, seed=seed)
        evidence.update(target.details_for(deletion, ids))
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
    crash_point("ledger-committed")
    for request in stored:
        path = _write_certificate_file(ledger, request.request_id, signed[request.request_id])
        crash_point("certificate-written")
        out.applied.append((request, path, signed[request.request_id]))
    out.seconds = time.perf_counter() - started
    return out
