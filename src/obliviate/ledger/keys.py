"""The ledger's Ed25519 signing key, pinned by its fingerprint in the ledger.

Files: the private key is PKCS#8 PEM at ``<ledger>/keys/ed25519.pem`` (mode 0600, folder 0700); the
public key is derived from it and written as ``ed25519.pub`` (SubjectPublicKeyInfo PEM) for verifiers.

Trust: the first time a ledger's key is created (or a key made before pinning existed is first
used), its fingerprint is **pinned** in the ledger (meta ``signing_key_fingerprint``, with a
``signing key pinned`` row in the ledger's ``events`` audit table). From then on:

- a missing private key, or one whose fingerprint is not the pin, is a :class:`SigningKeyError` that
  says to restore ``keys/`` from a backup or to rotate explicitly; a new key is never made silently;
- verification trusts only pinned keys, never the key a certificate embeds (:func:`trusted_signer`);
- :func:`rotate_key` (``obliviate key rotate``) is the only way to change the key: it stages the new
  key, pins it and records a ``signing key rotated`` event in one transaction, then puts the key in
  place (a crash in between is finished by the next :func:`load_or_create_key`).

History: each ``signing key pinned``/``rotated`` event's detail is JSON holding the key's fingerprint,
its public key and the one it replaced; the events, in order, are the pin history. A certificate
signed by a retired key still verifies when it was created before that key's retirement **and** the
ledger holds that very certificate (so a leaked retired key cannot issue new ones that verify).
``rotate_key(..., revoke=True)`` (``--revoke``, for a compromised key) withdraws trust from the
retired key altogether: its certificates then fail and the requests must be applied again.

Creation is race-free: a new key is written to a temporary file and hard-linked into place, which
fails if another process created it first (that key is then used), so a ledger never has two keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from obliviate.errors import (
    CorruptCheckpointError,
    DamagedKeyError,
    InvalidInputError,
    SigningKeyError,
    UntrustedKeyError,
)
from obliviate.ledger.files import read_user_file
from obliviate.storage import atomic_write_bytes

if TYPE_CHECKING:
    from obliviate.ledger.store import Ledger

__all__ = [
    "PIN_META",
    "PINNED_EVENT",
    "ROTATED_EVENT",
    "PinnedKey",
    "SigningKeyError",
    "DamagedKeyError",
    "UntrustedKeyError",
    "load_or_create_key",
    "load_public_key",
    "public_key_b64",
    "public_key_from_b64",
    "key_fingerprint",
    "private_key_path",
    "public_key_path",
    "pinned_fingerprint",
    "key_history",
    "rotate_key",
    "trusted_signer",
]

PIN_META = "signing_key_fingerprint"
PINNED_EVENT = "signing key pinned"
ROTATED_EVENT = "signing key rotated"


def private_key_path(ledger_folder: str | Path) -> Path:
    return Path(ledger_folder) / "keys" / "ed25519.pem"


def public_key_path(ledger_folder: str | Path) -> Path:
    return Path(ledger_folder) / "keys" / "ed25519.pub"


def _staged_path(ledger_folder: str | Path) -> Path:
    """Where :func:`rotate_key` puts the new private key before it is pinned."""
    return Path(ledger_folder) / "keys" / "ed25519.pem.next"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keys_folder(ledger_folder: str | Path) -> Path:
    folder = Path(ledger_folder) / "keys"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_secret(path: Path, key: Ed25519PrivateKey) -> Path:
    """Write ``key`` to a new temporary file beside ``path`` (mode 0600 from the start, fsynced)."""
    staged = path.parent / f".{path.name}.{uuid.uuid4().hex}.new"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(fd, "wb") as fh:
        fh.write(_private_pem(key))
        fh.flush()
        os.fsync(fh.fileno())
    return staged


def _read_private(path: Path) -> Ed25519PrivateKey:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DamagedKeyError(path, f"unreadable ({exc.strerror or exc})") from exc
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DamagedKeyError(path, f"not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise DamagedKeyError(path, f"holds a {type(key).__name__}, not an Ed25519 key")
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # keep the secret to its owner even if someone loosened it
    return key


def _write_public(ledger_folder: str | Path, key: Ed25519PrivateKey) -> None:
    pub = public_key_path(ledger_folder)
    pem = _public_pem(key.public_key())
    if not pub.exists() or pub.read_bytes() != pem:
        atomic_write_bytes(pub, pem, mode=0o644)


def _file_key(ledger_folder: str | Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key in ``keys/ed25519.pem``, created if there is none; ``(key, created)``."""
    path = private_key_path(ledger_folder)
    _keys_folder(ledger_folder)
    created = False
    if not path.exists():
        staged = _write_secret(path, Ed25519PrivateKey.generate())
        try:
            os.link(staged, path)  # fails if another process won the race: use its key
            created = True
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)
        _fsync_folder(path.parent)
    return _read_private(path), created


def _restore_hint(folder: Path, pin: str) -> str:
    return (
        f"restore {private_key_path(folder)} (the key with fingerprint {pin}) from a backup of {folder / 'keys'}, "
        f"or, if it is lost for good, rotate explicitly with `obliviate key rotate --ledger {folder}` "
        "(audited; certificates signed before the rotation still verify)"
    )


def _finish_rotation(folder: Path, pin: str) -> None:
    """Put a staged key in place when it is the pinned one (a rotation cut short after its pin)."""
    staged = _staged_path(folder)
    if not staged.exists():
        return
    try:
        key = _read_private(staged)
    except CorruptCheckpointError:
        return
    if key_fingerprint(key.public_key()) == pin:
        os.replace(staged, private_key_path(folder))
        _fsync_folder(staged.parent)


def _pin_detail(key: Ed25519PublicKey, *, how: str, previous: str | None = None, revoke: bool = False) -> str:
    return json.dumps(
        {
            "fingerprint": key_fingerprint(key),
            "public_key": public_key_b64(key),
            "previous": previous,
            "revoke_previous": revoke,
            "how": how,
        },
        sort_keys=True,
    )


def _ledger_key(ledger: Ledger) -> Ed25519PrivateKey:
    folder = ledger.folder
    pin = ledger.get_meta(PIN_META)
    path = private_key_path(folder)
    if pin is None:
        existed = path.exists()
        key, _ = _file_key(folder)
        fingerprint = key_fingerprint(key.public_key())
        pub = public_key_path(folder)
        if existed and pub.exists() and pub.read_bytes() != _public_pem(key.public_key()):
            raise SigningKeyError(
                f"{path} (fingerprint {fingerprint}) is not the key of {pub}, and the ledger has no pinned key to "
                f"tell which is right; restore {folder / 'keys'} from a backup, or pass the key you trust with "
                f"`obliviate key rotate --ledger {folder}` to start afresh."
            )
        again = ledger.get_meta(PIN_META)  # another process may have pinned it meanwhile: the same file
        if again is None:
            how = "existing key pinned on first use" if existed else "created"
            ledger.set_meta(PIN_META, fingerprint, event=PINNED_EVENT, detail=_pin_detail(key.public_key(), how=how))
        elif again != fingerprint:
            raise SigningKeyError(
                f"{path} has fingerprint {fingerprint}, not the pinned {again}; {_restore_hint(folder, again)}."
            )
        _write_public(folder, key)
        return key
    _finish_rotation(folder, pin)
    if not path.exists():
        raise SigningKeyError(
            f"the ledger's signing key {path} is missing, and the ledger pins {pin}; no new key is made silently: "
            f"{_restore_hint(folder, pin)}."
        )
    key = _read_private(path)
    fingerprint = key_fingerprint(key.public_key())
    if fingerprint != pin:
        raise SigningKeyError(
            f"{path} holds key {fingerprint}, but the ledger pins {pin} (the key was replaced); "
            f"{_restore_hint(folder, pin)}."
        )
    _keys_folder(folder)
    _write_public(folder, key)
    return key


def _open_ledger_at(folder: Path) -> Ledger | None:
    from obliviate.ledger.store import DB_NAME, Ledger

    db = folder / DB_NAME
    if db.is_file() and db.stat().st_size > 0:
        return Ledger(folder)
    return None


def load_or_create_key(ledger: Ledger | str | Path) -> Ed25519PrivateKey:
    """The ledger's private key (module docstring): created and pinned on first use, else the pinned one.

    Given a :class:`Ledger` (or the folder of an existing ledger, opened for the purpose), a missing
    or replaced key while a fingerprint is pinned raises :class:`SigningKeyError`. Given a folder with
    no ledger database, the key is only kept in ``keys/`` (created once, mode 0600; nothing pinned)."""
    from obliviate.ledger.store import Ledger

    if isinstance(ledger, Ledger):
        return _ledger_key(ledger)
    folder = Path(ledger)
    book = _open_ledger_at(folder)
    if book is not None:
        with book:
            return _ledger_key(book)
    key, _ = _file_key(folder)
    _write_public(folder, key)
    return key


def pinned_fingerprint(ledger: Ledger) -> str | None:
    """The fingerprint of the ledger's current signing key, or None before the first key is made."""
    return ledger.get_meta(PIN_META)


@dataclass(frozen=True)
class PinnedKey:
    """One key in the ledger's pin history; ``retired_at`` is None for the current key."""

    fingerprint: str
    public_key: str | None
    pinned_at: datetime
    retired_at: datetime | None
    revoked: bool
    how: str


def key_history(ledger: Ledger) -> list[PinnedKey]:
    """Every key the ledger has pinned, oldest first, from its ``events`` audit table."""
    pins: list[tuple[datetime, dict]] = []
    for _, at, kind, detail in ledger.events():
        if kind not in (PINNED_EVENT, ROTATED_EVENT):
            continue
        try:
            record = json.loads(detail)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("fingerprint"), str):
            pins.append((at, record))
    out: list[PinnedKey] = []
    for n, (at, record) in enumerate(pins):
        following = pins[n + 1] if n + 1 < len(pins) else None
        out.append(
            PinnedKey(
                fingerprint=record["fingerprint"],
                public_key=record.get("public_key"),
                pinned_at=at,
                retired_at=following[0] if following else None,
                revoked=bool(following and following[1].get("revoke_previous")),
                how=str(record.get("how", "")),
            )
        )
    return out


def rotate_key(ledger: Ledger, *, revoke: bool = False) -> tuple[str | None, Ed25519PrivateKey]:
    """Replace the ledger's signing key with a new one and pin it (audited); returns ``(old pin, new key)``.

    Works when the old private key is lost or replaced (that is what it is for). ``revoke`` withdraws
    trust from the old key's certificates too (see the module docstring). Holds the apply lock, so no
    ``apply`` signs with the old key while the pin changes."""
    folder = ledger.folder
    with ledger.apply_lock():
        old = ledger.get_meta(PIN_META)
        if old is None and private_key_path(folder).exists():
            try:  # a key made before pins existed: pin it first, so its certificates keep verifying
                old = key_fingerprint(_ledger_key(ledger).public_key())
            except (SigningKeyError, CorruptCheckpointError):
                old = None
        keys = _keys_folder(folder)
        key = Ed25519PrivateKey.generate()
        tmp = _write_secret(_staged_path(folder), key)
        os.replace(tmp, _staged_path(folder))
        _fsync_folder(keys)
        new = key_fingerprint(key.public_key())
        ledger.set_meta(
            PIN_META,
            new,
            event=ROTATED_EVENT if old else PINNED_EVENT,
            detail=_pin_detail(key.public_key(), how="rotated" if old else "created", previous=old, revoke=revoke),
        )
        _finish_rotation(folder, new)  # the commit point was the pin; a crash before this is finished on next use
        _write_public(folder, key)
    return old, key


def _parse_time(text: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def trusted_signer(ledger: Ledger, cert: dict) -> tuple[bool | None, str]:
    """Whether the ledger's pins trust the key that signed ``cert`` (its ``signer.fingerprint``):
    ``(None, why)`` when the ledger pins no key at all, else ``(ok, what was decided)``. The signature
    itself is checked by :func:`obliviate.ledger.certificate.check_signature`."""
    pin = pinned_fingerprint(ledger)
    if pin is None:
        return None, f"the ledger {ledger.folder} has no pinned signing key"
    signer = cert.get("signer")
    fingerprint = signer.get("fingerprint") if isinstance(signer, dict) else None
    if fingerprint == pin:
        return True, f"the ledger's pinned key {pin}"
    for entry in key_history(ledger):
        if entry.fingerprint != fingerprint or entry.retired_at is None:
            continue
        when = f"pinned {entry.pinned_at:%Y-%m-%d %H:%M:%S} to {entry.retired_at:%Y-%m-%d %H:%M:%S} UTC"
        if entry.revoked:
            return False, f"signed by key {fingerprint} ({when}), revoked at its rotation; apply the request again"
        created = _parse_time(cert.get("created_at"))
        if created is None or created >= entry.retired_at:
            return False, f"signed by retired key {fingerprint} ({when}) after its retirement"
        request = cert.get("request")
        request_id = request.get("request_id") if isinstance(request, dict) else None
        stored = ledger.certificate(str(request_id)) if isinstance(request_id, str) else None
        try:
            same = stored is not None and json.loads(stored).get("signature") == cert.get("signature")
        except (ValueError, AttributeError):
            same = False
        if not same:
            return False, f"signed by retired key {fingerprint} ({when}) but not a certificate this ledger issued"
        return True, f"key {fingerprint}, pinned when the certificate was issued ({when})"
    return False, f"signed by key {fingerprint}, which this ledger never pinned (it pins {pin})"


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``ed25519.pub``) or a file holding its base64 raw bytes."""
    path = Path(path)
    raw = read_user_file(
        path,
        "public key file",
        hint="restore it from a backup of the ledger's keys/ folder, or verify with --ledger LEDGER "
        "(the ledger's pinned key; `obliviate key show --ledger LEDGER` prints it)",
    )
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
