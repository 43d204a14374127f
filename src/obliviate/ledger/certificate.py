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
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from obliviate.errors import (
    InvalidCertificateError,
    InvalidInputError,
)
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
    "certificate_problems",
    "InvalidCertificateError",
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


def check_signature(cert: dict, *, trusted: Ed25519PublicKey | str | None = None) -> tuple[bool, str]:
    """``(ok, what was checked)``: the signature verifies under the embedded key, whose fingerprint must
    be ``trusted``'s (a public key or its ``SHA256:...`` fingerprint). Without ``trusted`` this only
    says the certificate is self-consistent: verification (:mod:`obliviate.ledger.verify`) always
    passes a trusted key, never relying on the embedded one."""
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
    wanted = trusted if isinstance(trusted, str) or trusted is None else key_fingerprint(trusted)
    if wanted is not None and wanted != fingerprint:
        return False, f"signed by key {fingerprint}, not by the trusted key {wanted}"
    try:
        embedded.verify(signature, canonical_json(_signed_part(cert)))
    except (InvalidSignature, InvalidInputError):
        return False, f"signature does not match the certificate's contents (key {fingerprint})"
    who = "the trusted key" if wanted is not None else "its embedded key only (not verified against a trusted key)"
    return True, f"Ed25519 signature valid under {who} {fingerprint}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def certificate_problems(cert: dict) -> list[str]:
    """What is wrongly typed in the fields verification reads (empty for a certificate ``apply`` wrote)."""
    problems = []
    request = cert.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("request_id"), str):
        problems.append("'request' must be an object with a string 'request_id'")
    removed = cert.get("removed_ids")
    if not isinstance(removed, list) or not all(_is_int(i) for i in removed):
        problems.append("'removed_ids' must be a list of 64-bit integers")
    model = cert.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("sha256"), str):
        problems.append("'model' must be an object with a string 'sha256'")
    elif model.get("sha256_before") is not None and not isinstance(model.get("sha256_before"), str):
        problems.append("'model.sha256_before' must be a string")
    target = cert.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("kind"), str):
        problems.append("'target' must be an object with a string 'kind'")
    if cert.get("data_fingerprint") is not None and not isinstance(cert.get("data_fingerprint"), str):
        problems.append("'data_fingerprint' must be a string")
    for name in ("created_at", "batch_id", "signature"):
        if not isinstance(cert.get(name), str):
            problems.append(f"'{name}' must be a string")
    if not isinstance(cert.get("signer"), dict):
        problems.append("'signer' must be an object")
    return problems


def certificate_path(ledger_folder: str | Path, request_id: str) -> Path:
    return Path(ledger_folder) / "certificates" / f"{request_id}.json"


def write_certificate(path: str | Path, cert: dict) -> Path:
    """Write ``cert`` atomically (indented for people; verification re-canonicalises)."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    data = (json.dumps(cert, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    atomic_write_bytes(path, data, mode=0o600)
    return path


def read_certificate(path: str | Path) -> dict:
    """A certificate file as a dict; a missing file is an :class:`InvalidInputError`; a file that is not
    a certificate (binary, not JSON, not an object, another schema) an :class:`InvalidCertificateError`."""
    path = Path(path)
    try:
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):
            raise InvalidCertificateError(path, "not a regular file")
    except OSError as exc:
        if isinstance(exc, InvalidCertificateError):
            raise
        raise InvalidInputError(f"cannot read certificate {path}: {exc.strerror or exc}.") from exc
    raw = read_user_file(path, "certificate", hint="certificates are under <ledger>/certificates/")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCertificateError(path, f"binary, not UTF-8 text (byte {exc.start})") from exc
    try:
        cert = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidCertificateError(path, f"not JSON: {str(exc)[:200]}") from exc
    except ValueError as exc:  # e.g. an integer too long to convert
        raise InvalidCertificateError(path, f"not JSON: {str(exc)[:200]}") from exc
    if not isinstance(cert, dict):
        raise InvalidCertificateError(path, f"a JSON {type(cert).__name__}, not an object")
    if cert.get("schema") != CERTIFICATE_SCHEMA:
        raise InvalidCertificateError(path, f"not an {CERTIFICATE_SCHEMA} certificate")
    return cert
