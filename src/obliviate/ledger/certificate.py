"""Deletion certificates: canonical JSON signed with the ledger's Ed25519 key.

A certificate states what one applied request removed and the evidence that it is gone (see
:mod:`obliviate.ledger.apply` for the fields). Its ``signer`` block embeds the public key and its
fingerprint; ``signature`` is Ed25519 (RFC 8032) over the canonical JSON of everything else:
``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
encoded as UTF-8. Any change to any field, or a signature by another key, fails verification.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.ledger.files import read_user_file
from obliviate.ledger.keys import key_fingerprint, public_key_b64, public_key_from_b64
from obliviate.storage import atomic_write_bytes

__all__ = [
    "CERTIFICATE_SCHEMA",
    "canonical_json",
    "sign_certificate",
    "check_signature",
    "write_certificate",
    "read_certificate",
    "certificate_path",
]

CERTIFICATE_SCHEMA = "obliviate.certificate/1"
SIGNATURE_ALGORITHM = "Ed25519"


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the exact bytes that are signed."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError as exc:
        raise InvalidInputError(f"a certificate must hold finite numbers only: {exc}.") from exc


def _signed_part(cert: dict) -> dict:
    return {k: v for k, v in cert.items() if k != "signature"}


def sign_certificate(body: dict, key: Ed25519PrivateKey) -> dict:
    """``body`` with its ``signer`` (public key, fingerprint) and ``signature`` over the canonical JSON."""
    public = key.public_key()
    cert = {
        **_signed_part(body),
        "schema": CERTIFICATE_SCHEMA,
        "signer": {
            "algorithm": SIGNATURE_ALGORITHM,
            "public_key": public_key_b64(public),
            "fingerprint": key_fingerprint(public),
        },
    }
    cert["signature"] = base64.b64encode(key.sign(canonical_json(cert))).decode()
    return cert


def check_signature(cert: dict, *, trusted: Ed25519PublicKey | None = None) -> tuple[bool, str]:
    """``(ok, what was checked)``: the signature verifies under the embedded key, which is ``trusted`` when given."""
    signer = cert.get("signer")
    if not isinstance(signer, dict) or signer.get("algorithm") != SIGNATURE_ALGORITHM or "signature" not in cert:
        return False, "no Ed25519 signer block or signature"
    try:
        embedded = public_key_from_b64(str(signer.get("public_key", "")))
        signature = base64.b64decode(str(cert["signature"]), validate=True)
    except (ValueError, binascii.Error) as exc:
        return False, f"unreadable key or signature ({exc})"
    fingerprint = key_fingerprint(embedded)
    if signer.get("fingerprint") != fingerprint:
        return (
            False,
            f"embedded fingerprint {signer.get('fingerprint')} is not that of the embedded key ({fingerprint})",
        )
    if trusted is not None and key_fingerprint(trusted) != fingerprint:
        return False, f"signed by key {fingerprint}, not by the trusted key {key_fingerprint(trusted)}"
    try:
        embedded.verify(signature, canonical_json(_signed_part(cert)))
    except InvalidSignature:
        return False, f"signature does not match the certificate's contents (key {fingerprint})"
    who = "the trusted key" if trusted is not None else "its embedded key (pass --pubkey to pin the signer)"
    return True, f"Ed25519 signature valid under {who} {fingerprint}"


def certificate_path(ledger_folder: str | Path, request_id: str) -> Path:
    return Path(ledger_folder) / "certificates" / f"{request_id}.json"


def write_certificate(path: str | Path, cert: dict) -> Path:
    """Write ``cert`` atomically (indented for people; verification re-canonicalises)."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(cert, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
    return path


def read_certificate(path: str | Path) -> dict:
    """A certificate file as a dict; a missing file is an input error, an unparsable one corrupt."""
    path = Path(path)
    text = read_user_file(path, "certificate", hint="certificates are under <ledger>/certificates/")
    try:
        cert = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptCheckpointError(path, f"not JSON: {exc}") from exc
    if not isinstance(cert, dict) or cert.get("schema") != CERTIFICATE_SCHEMA:
        raise CorruptCheckpointError(path, f"not an {CERTIFICATE_SCHEMA} certificate")
    return cert
