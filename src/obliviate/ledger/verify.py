"""Verify a deletion certificate against the current model.

Checks, each reported pass/fail:

1. **signature**: Ed25519 over the certificate's canonical JSON, by a trusted key: ``pubkey`` when
   given, else a key the ledger pinned (the current pin, or a retired one for a certificate the ledger
   issued before that key's rotation; see :mod:`obliviate.ledger.keys`). The key a certificate embeds
   is never trusted on its own: with neither ``pubkey`` nor a ledger pin, :class:`UntrustedKeyError`;
2. **data**: the model was trained on the data the certificate names (fingerprints equal); for a document
   store, it is the certified store (same ``store_id``: documents added later change its id table, not the store);
3. **model hash**: the model's hash, **recomputed from the weights on disk now** (every current SISA
   checkpoint re-read and hashed, every slice's weights matching its manifest and the state; a model
   file's tensors hashed), is the certified one, or the model descends from it through later batches
   whose certificates (in the ledger, each signed by a trusted key) chain the hashes
   ``sha256_before -> sha256``. A flipped bit, an empty, missing or swapped checkpoint fails it. A document
   store also changes outside the ledger (documents added, deleted by ``obliviate store delete``): its hash as of
   the certificate is replayed from the table and the tombstones (:meth:`Target.replayed_sha256`), so later
   additions and deletions pass while a deleted document written back fails;
4. **ids gone**: none of the removed ids is in any current manifest (SISA), or all of them are in the
   model file's ``forgotten_ids`` (a model unlearned from a file); for a store, neither the removed ids nor the
   near-duplicates deleted with them (``evidence.expanded_ids``) are in the table, either index or the snapshots.

A certificate whose fields are wrongly typed fails a **format** check (nothing else is checked);
a file that is not a certificate at all is an :class:`InvalidCertificateError`.
When every check passes and the request is in the ledger as applied, it is marked verified, but only
by the certificate the ledger itself issued for that request (the one stored in the ledger, compared
whole), so a certificate re-signed under a ``pubkey`` the ledger never pinned can pass its checks but
never changes the ledger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from obliviate.errors import InvalidInputError, ObliviateError
from obliviate.ledger.certificate import canonical_json, certificate_problems, check_signature, read_certificate
from obliviate.ledger.keys import UntrustedKeyError, load_public_key, trusted_signer
from obliviate.ledger.store import APPLIED, VERIFIED, Ledger, UnknownRequestError
from obliviate.ledger.targets import Target

__all__ = ["Check", "Verification", "verify_certificate", "mark_verified", "UntrustedKeyError"]


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
    #: the certificate is the one the ledger issued for its request (only such a one marks the request)
    issued_by_ledger: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def _signature(cert: dict, ledger: Ledger | None, pubkey: Ed25519PublicKey | None) -> tuple[bool, str]:
    """The signature check under the trusted key (see the module docstring)."""
    if pubkey is not None:
        ok, detail = check_signature(cert, trusted=pubkey)
        return ok, detail + (" (given with --pubkey)" if ok else "")
    trusted, why = trusted_signer(ledger, cert) if ledger is not None else (None, "no ledger was given")
    if trusted is None:
        raise UntrustedKeyError(
            f"no trusted signing key to verify against ({why}); a certificate's own embedded key is never trusted. "
            "Pass --ledger LEDGER (the ledger that issued it: its pinned key, which `obliviate key show` prints) "
            "or --pubkey FILE (a trusted copy of that ledger's keys/ed25519.pub)."
        )
    signer = cert.get("signer") if isinstance(cert.get("signer"), dict) else {}
    ok, detail = check_signature(cert, trusted=str(signer.get("fingerprint")))
    if not ok:
        return False, detail
    if not trusted:
        return False, why
    return True, f"Ed25519 signature valid under {why}"


def _hash_chain(cert: dict, current: str, ledger: Ledger | None, pubkey: Ed25519PublicKey | None) -> tuple[bool, str]:
    certified = cert["model"]["sha256"]
    if certified == current:
        return True, f"model sha256 {current[:16]}... (recomputed from the weights on disk) is the certified one"
    if ledger is None:
        return (
            False,
            f"model sha256 {current[:16]}... differs from the certified {str(certified)[:16]}... (pass --ledger to follow later batches)",
        )
    links: dict[str, tuple[str, str]] = {}
    for body in ledger.certificates().values():
        try:
            other = json.loads(body)
        except ValueError:
            continue
        if not isinstance(other, dict) or certificate_problems(other):
            continue
        try:
            if not _signature(other, ledger, pubkey)[0]:
                continue
        except UntrustedKeyError:
            continue
        before, after = other["model"].get("sha256_before"), other["model"]["sha256"]
        if before and after and before != after:
            links[before] = (after, str(other.get("batch_id", "?")))
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


def _model_hash(cert: dict, target: Target, ledger: Ledger | None, pubkey: Ed25519PublicKey | None) -> Check:
    try:
        current, problems = target.weights_on_disk()
    except ObliviateError as exc:
        return Check("model hash", False, f"the model cannot be read from disk: {exc}")
    if problems:
        where, why = next(iter(problems.items()))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(
            "model hash",
            False,
            f"{len(problems)} checkpoint(s) on disk are not what was recorded: {where}: {why}{more}; "
            "restore the folder from a backup, or run `repair` (SISA) and apply again",
        )
    if current is None:  # pragma: no cover - an unreadable file is always reported as a problem
        return Check("model hash", False, "the model's weights cannot be read from disk")
    ok, detail = _hash_chain(cert, current, ledger, pubkey)
    if not ok:
        try:
            replayed, how = target.replayed_sha256(cert)
        except ObliviateError as exc:
            replayed, how = None, str(exc)
        if replayed is not None and replayed == cert["model"]["sha256"]:
            return Check("model hash", True, f"{how}, is the certified one")
        if replayed is not None:
            detail += f"; {how}, is not the certified hash either"
    return Check("model hash", ok, detail)


def _data(cert: dict, target: Target) -> Check:
    """The target holds the data the certificate is about. A document store is the same store (its ``store_id``,
    a random id drawn when it was created): its id table grows with every document added after the certificate,
    so its fingerprint is not comparable; a model's training data is fixed, so its fingerprint is."""
    if target.kind == "store":
        certified = cert["target"].get("store_id")
        current = target.describe().get("store_id")
        same = bool(certified) and certified == current
        return Check(
            "data",
            same,
            f"store id {str(current)[:16]}... {'is' if same else 'is not'} the certified store's"
            + ("" if same else f" ({str(certified)[:16]}...): the certificate is about another document store"),
        )
    fingerprint = target.data_fingerprint()
    same = fingerprint == cert.get("data_fingerprint")
    return Check(
        "data",
        same,
        f"training data fingerprint {str(fingerprint)[:16]}... {'matches' if same else 'differs from'} the certificate's",
    )


def _ids_gone(cert: dict, target: Target) -> Check:
    """None of the removed ids (and, for a store, none of the near-duplicates deleted with them) is held."""
    removed = [int(i) for i in cert["removed_ids"]]
    expanded: list[int] = []
    if target.kind == "store":
        listed = cert["evidence"].get("expanded_ids", [])
        if not isinstance(listed, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in listed):
            return Check("ids gone", False, "the certificate's evidence.expanded_ids is not a list of document ids")
        expanded = sorted(set(listed) - set(removed))
    try:
        present = target.ids_still_present(removed + expanded)
    except ObliviateError as exc:
        return Check("ids gone", False, f"cannot read what the model holds: {exc}")
    where = {
        "sisa": "current manifest",
        "store": "store (table, both indexes, snapshot files)",
    }.get(target.kind, "model (not in its forgotten_ids)")
    what = f"{len(removed)} removed ids" + (f" and {len(expanded)} near-duplicate(s) deleted with them" if expanded else "")
    detail = (
        f"none of the {what} is in any {where}"
        if not present
        else f"{len(present)} removed id(s) still in the {where}: {present[:10]}"
    )
    return Check("ids gone", not present and bool(removed), detail)


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
    trusted = load_public_key(pubkey) if isinstance(pubkey, str | Path) else pubkey
    if trusted is not None and not isinstance(trusted, Ed25519PublicKey):
        raise InvalidInputError(f"pubkey must be a path or an Ed25519PublicKey, got {type(pubkey).__name__}.")
    cert = read_certificate(cert_path)
    request = cert.get("request")
    request_id = request.get("request_id") if isinstance(request, dict) else None
    result = Verification(certificate=cert_path, request_id=request_id if isinstance(request_id, str) else "?")
    ok, detail = _signature(cert, ledger, trusted)
    result.checks.append(Check("signature", ok, detail))
    if ledger is not None and isinstance(request_id, str):
        result.issued_by_ledger = _issued_by(ledger, request_id, cert, pinned_trust=trusted is None)
    problems = certificate_problems(cert)
    if problems:
        result.checks.append(Check("format", False, "; ".join(problems)))
        return result
    if target is not None:
        expected_kind = cert["target"]["kind"]
        if expected_kind != target.kind:
            result.checks.append(
                Check("target", False, f"the certificate is for a {expected_kind} target, not a {target.kind}")
            )
            return result
        result.checks.append(_data(cert, target))
        result.checks.append(_model_hash(cert, target, ledger, trusted))
        result.checks.append(_ids_gone(cert, target))
    result.model_checked = target is not None
    if mark and ledger is not None:
        mark_verified(ledger, [result])
    return result


def _issued_by(ledger: Ledger, request_id: str, cert: dict, *, pinned_trust: bool) -> bool:
    """Whether ``cert`` is the certificate ``ledger`` issued for ``request_id``: equal, as canonical JSON, to
    the one stored when it was applied. A request applied before the ledger stored certificates has none
    stored; its certificate counts when it was checked under the ledger's pinned keys (not a ``pubkey``)."""
    stored = ledger.certificate(request_id)
    if stored is None:
        return pinned_trust
    try:
        return canonical_json(json.loads(stored)) == canonical_json(cert)
    except (ValueError, TypeError, ObliviateError):
        return False


def mark_verified(ledger: Ledger, results: list[Verification]) -> list[str]:
    """Mark, in ONE transaction, the applied requests whose certificates passed every check against
    a model and are the ones the ledger issued; returns their ids (requests already verified count as
    marked, unknown ones and certificates the ledger did not issue are skipped)."""
    passed = [r for r in results if r.ok and r.model_checked and r.issued_by_ledger]
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
