"""Verify a deletion certificate against the current model.

Checks, each reported pass/fail:

1. **signature**: Ed25519 over the certificate's canonical JSON, under the trusted key (``pubkey``,
   else the ledger's own key, else the embedded key, said so);
2. **data**: the model was trained on the data the certificate names (fingerprints equal);
3. **model hash**: the model's current hash is the certified one, or the model descends from it
   through later batches whose certificates (in the ledger, each signed by the same key) chain the
   hashes ``sha256_before -> sha256``;
4. **ids gone**: none of the removed ids is in any current manifest (SISA), or all of them are in the
   model file's ``forgotten_ids`` (a model unlearned from a file).

When every check passes and the request is in the ledger as applied, it is marked verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from obliviate.errors import InvalidInputError
from obliviate.ledger.certificate import check_signature, read_certificate
from obliviate.ledger.keys import load_public_key, public_key_path
from obliviate.ledger.store import APPLIED, VERIFIED, Ledger, UnknownRequestError
from obliviate.ledger.targets import Target

__all__ = ["Check", "Verification", "verify_certificate", "mark_verified"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    """The checks made on one certificate; ``ok`` when all passed."""

    certificate: Path
    request_id: str
    checks: list[Check] = field(default_factory=list)
    model_checked: bool = False
    marked_verified: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def _hash_chain(cert: dict, current: str, ledger: Ledger | None, trusted: Ed25519PublicKey | None) -> tuple[bool, str]:
    certified = cert.get("model", {}).get("sha256")
    if certified == current:
        return True, f"model sha256 {current[:16]}... is the certified one"
    if ledger is None:
        return (
            False,
            f"model sha256 {current[:16]}... differs from the certified {str(certified)[:16]}... (pass --ledger to follow later batches)",
        )
    links: dict[str, tuple[str, str]] = {}
    for body in ledger.certificates().values():
        other = json.loads(body)
        if not check_signature(other, trusted=trusted)[0]:
            continue
        before, after = other.get("model", {}).get("sha256_before"), other.get("model", {}).get("sha256")
        if before and after and before != after:
            links[before] = (after, other.get("batch_id", "?"))
    seen, at, path = set(), certified, []
    while at in links and at not in seen:
        seen.add(at)
        at, batch = links[at]
        path.append(batch)
        if at == current:
            return (
                True,
                f"model sha256 {current[:16]}... descends from the certified model through {len(path)} later certified batch(es): {', '.join(path)}",
            )
    return (
        False,
        f"model sha256 {current[:16]}... is neither the certified {str(certified)[:16]}... nor reached from it by certified batches",
    )


def verify_certificate(
    cert_path: str | Path,
    target: Target | None,
    *,
    ledger: Ledger | None = None,
    pubkey: str | Path | Ed25519PublicKey | None = None,
    mark: bool = True,
) -> Verification:
    """Run the checks above on ``cert_path`` against ``target`` (None: the signature alone).

    ``mark=False`` leaves the ledger as it is (``result.ok`` says whether to mark it; the CLI marks
    every verified certificate of one call in one transaction)."""
    cert_path = Path(cert_path)
    cert = read_certificate(cert_path)
    request_id = str(cert.get("request", {}).get("request_id", "?"))
    result = Verification(certificate=cert_path, request_id=request_id)
    trusted = pubkey
    if isinstance(pubkey, str | Path):
        trusted = load_public_key(pubkey)
    elif pubkey is None and ledger is not None and public_key_path(ledger.folder).exists():
        trusted = load_public_key(public_key_path(ledger.folder))
    if trusted is not None and not isinstance(trusted, Ed25519PublicKey):
        raise InvalidInputError(f"pubkey must be a path or an Ed25519PublicKey, got {type(pubkey).__name__}.")
    ok, detail = check_signature(cert, trusted=trusted)
    result.checks.append(Check("signature", ok, detail))
    if target is not None:
        expected_kind = cert.get("target", {}).get("kind")
        if expected_kind != target.kind:
            result.checks.append(
                Check("target", False, f"the certificate is for a {expected_kind} target, not a {target.kind}")
            )
            return result
        fingerprint = target.data_fingerprint()
        same = fingerprint == cert.get("data_fingerprint")
        result.checks.append(
            Check(
                "data",
                same,
                f"training data fingerprint {str(fingerprint)[:16]}... {'matches' if same else 'differs from'} the certificate's",
            )
        )
        ok, detail = _hash_chain(cert, target.current_sha256(), ledger, trusted)
        result.checks.append(Check("model hash", ok, detail))
        removed = [int(i) for i in cert.get("removed_ids", [])]
        present = target.ids_still_present(removed)
        where = "current manifest" if target.kind == "sisa" else "model (not in its forgotten_ids)"
        detail = (
            f"none of the {len(removed)} removed ids is in any {where}"
            if not present
            else f"{len(present)} removed id(s) still in the {where}: {present[:10]}"
        )
        result.checks.append(Check("ids gone", not present and bool(removed), detail))
    result.model_checked = target is not None
    if mark and ledger is not None:
        mark_verified(ledger, [result])
    return result


def mark_verified(ledger: Ledger, results: list[Verification]) -> list[str]:
    """Mark, in ONE transaction, the applied requests whose certificates passed every check against
    a model; returns their ids (requests already verified count as marked, unknown ones are skipped)."""
    passed = [r for r in results if r.ok and r.model_checked]
    statuses = {}
    for r in passed:
        try:
            statuses[r.request_id] = ledger.get(r.request_id).status
        except UnknownRequestError:  # a certificate from another ledger
            continue
    to_mark = [rid for rid, status in statuses.items() if status == APPLIED]
    if to_mark:
        ledger.transition(to_mark, VERIFIED)
    for r in passed:
        r.marked_verified = statuses.get(r.request_id) in (APPLIED, VERIFIED)
    return [rid for rid, status in statuses.items() if status in (APPLIED, VERIFIED)]
