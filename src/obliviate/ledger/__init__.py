"""Honouring deletion requests: a durable ledger, batch application, signed certificates.

    from obliviate.ledger import Ledger, SisaTarget, apply, verify_certificate
    ledger = Ledger("obliviate-ledger", create=True)
    ledger.add(ob.ForgetRequest(owners="alice"))
    outcome = apply(ledger, SisaTarget("sisa/"), data)
    verify_certificate(outcome.applied[0][1], SisaTarget("sisa/"), ledger=ledger).ok
"""

from obliviate.ledger.apply import ApplyInProgressError, ApplyOutcome, BatchOutcome, apply, export_certificates
from obliviate.ledger.certificate import (
    canonical_json,
    certificate_path,
    check_signature,
    read_certificate,
    sign_certificate,
    write_certificate,
)
from obliviate.ledger.keys import key_fingerprint, load_or_create_key, load_public_key
from obliviate.ledger.store import (
    APPLIED,
    FAILED,
    RECEIVED,
    SCHEDULED,
    STATUSES,
    VERIFIED,
    CorruptLedgerError,
    InvalidTransitionError,
    Ledger,
    LedgerDiskFullError,
    LedgerNotFoundError,
    LedgerRequest,
    LedgerStore,
    LedgerUnavailableError,
    SqliteStore,
    Transition,
    UnknownRequestError,
    content_key,
    default_ledger_path,
)
from obliviate.ledger.summation_target import SummationTarget
from obliviate.ledger.targets import Deletion, ModelTarget, SisaTarget, Target
from obliviate.ledger.verify import Check, Verification, mark_verified, verify_certificate

__all__ = [
    "APPLIED",
    "FAILED",
    "RECEIVED",
    "SCHEDULED",
    "STATUSES",
    "VERIFIED",
    "ApplyInProgressError",
    "ApplyOutcome",
    "BatchOutcome",
    "Check",
    "CorruptLedgerError",
    "Deletion",
    "InvalidTransitionError",
    "Ledger",
    "LedgerDiskFullError",
    "LedgerNotFoundError",
    "LedgerRequest",
    "LedgerStore",
    "LedgerUnavailableError",
    "ModelTarget",
    "SisaTarget",
    "SqliteStore",
    "SummationTarget",
    "Target",
    "Transition",
    "UnknownRequestError",
    "Verification",
    "apply",
    "canonical_json",
    "certificate_path",
    "check_signature",
    "content_key",
    "default_ledger_path",
    "export_certificates",
    "key_fingerprint",
    "load_or_create_key",
    "load_public_key",
    "mark_verified",
    "read_certificate",
    "sign_certificate",
    "verify_certificate",
    "write_certificate",
]
