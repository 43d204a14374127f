"""The ledger's Ed25519 signing key: created on first use, private key file mode 0600.

The private key is PKCS#8 PEM at ``<ledger>/keys/ed25519.pem`` (mode 0600); the public key is
derived from it and also written as ``ed25519.pub`` (SubjectPublicKeyInfo PEM) for verifiers.
Creation is race-free: the key is written to a temporary file and hard-linked into place, which
fails if another process created it first (that key is then used), so a ledger never has two keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.ledger.files import read_user_file
from obliviate.storage import atomic_write_bytes

__all__ = [
    "load_or_create_key",
    "load_public_key",
    "public_key_b64",
    "public_key_from_b64",
    "key_fingerprint",
    "private_key_path",
    "public_key_path",
]


def private_key_path(ledger_folder: str | Path) -> Path:
    return Path(ledger_folder) / "keys" / "ed25519.pem"


def public_key_path(ledger_folder: str | Path) -> Path:
    return Path(ledger_folder) / "keys" / "ed25519.pub"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_or_create_key(ledger_folder: str | Path) -> Ed25519PrivateKey:
    """The ledger's private key, created (mode 0600) if there is none yet."""
    path = private_key_path(ledger_folder)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.parent / f".{path.name}.{uuid.uuid4().hex}.new"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(staged, path)  # fails if another process won the race: use its key
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)
        _fsync_folder(path.parent)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CorruptCheckpointError(path, f"not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CorruptCheckpointError(path, f"holds a {type(key).__name__}, not an Ed25519 key")
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # keep the secret to its owner even if someone loosened it
    pub = public_key_path(ledger_folder)
    pem = _public_pem(key.public_key())
    if not pub.exists() or pub.read_bytes() != pem:
        atomic_write_bytes(pub, pem, mode=0o644)
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``ed25519.pub``) or a file holding its base64 raw bytes."""
    path = Path(path)
    raw = read_user_file(path, "public key file")
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            key = public_key_from_b64(raw.decode().strip())
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not an Ed25519 public key (PEM or base64): {exc}.") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInputError(f"{path} holds a {type(key).__name__}; certificates are signed with Ed25519.")
    return key


def public_key_b64(key: Ed25519PublicKey) -> str:
    """The 32 raw public-key bytes, base64."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<hex>`` of the raw public key bytes (first 32 hex digits)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]
