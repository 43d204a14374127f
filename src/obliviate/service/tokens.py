"""Bearer tokens with scopes, and the service's audit trail, in ``<ledger>/service.sqlite``.

The ledger's own schema is left alone: the service keeps its tokens and its per-call audit rows in
a second SQLite file beside ``ledger.sqlite`` (WAL, ``synchronous=FULL``, mode 0600), because the
ledger's public API has no call that appends to its ``events`` table (only :meth:`Ledger.set_meta`,
which also writes a setting). What the service files in the ledger is still audited there durably:
each filing's ledger key is ``svc:<token id>:<client key>``, so the ledger's own transition row
("filed under key svc:...") names the token that filed it.

A token is ``obl_<id>_<secret>``: ``id`` (8 bytes, hex) finds the row, ``secret`` (32 random bytes,
url-safe base64) is checked against the stored SHA-256 of the whole token with a constant-time
comparison. Only the hash is stored; the token itself is shown once, at creation. A 256-bit random
secret needs no slow password hash (there is nothing to guess from the hash; RFC 6750 bearer tokens
as in GitHub's and Stripe's hashed API keys).

Scopes (one token may hold several):

- ``requester``: file requests, read its own requests and their certificates;
- ``operator``: apply batches; read every request, certificate, batch and the status;
- ``auditor``: read requests and certificates, verify certificates, read the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from obliviate.errors import (
    InvalidInputError,
    ServiceStoreError,
)

__all__ = [
    "SCOPES",
    "REQUESTER",
    "OPERATOR",
    "AUDITOR",
    "TOKEN_DB",
    "Token",
    "TokenStore",
    "AuditRow",
    "check_scopes",
    "MAX_TOKEN_DAYS",
]

REQUESTER, OPERATOR, AUDITOR = "requester", "operator", "auditor"
SCOPES = (REQUESTER, OPERATOR, AUDITOR)
TOKEN_DB = "service.sqlite"
MAX_TOKEN_DAYS = 3660
_PREFIX = "obl_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    token_id TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_token ON audit(token_id, seq);
"""


def check_scopes(scopes: object) -> tuple[str, ...]:
    """``scopes`` (a name, a comma list or a list of names) as a sorted tuple of known scopes."""
    if isinstance(scopes, str):
        scopes = [s for s in scopes.split(",")]
    if not isinstance(scopes, list | tuple) or not scopes:
        raise InvalidInputError(f"give at least one scope: {', '.join(SCOPES)} (e.g. --scope requester).")
    out = set()
    for scope in scopes:
        scope = str(scope).strip()
        if scope not in SCOPES:
            raise InvalidInputError(f"unknown scope {scope[:40]!r}; one of {', '.join(SCOPES)}.")
        out.add(scope)
    return tuple(sorted(out))


@dataclass(frozen=True)
class Token:
    """A stored token (never its secret)."""

    token_id: str
    scopes: tuple[str, ...]
    name: str
    created: datetime
    expires: datetime
    revoked: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        return self.revoked is None and (now or datetime.now(UTC)) < self.expires

    def to_dict(self) -> dict:
        return {
            "token_id": self.token_id,
            "scopes": list(self.scopes),
            "name": self.name,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat(),
            "revoked": self.revoked.isoformat() if self.revoked else None,
        }


@dataclass(frozen=True)
class AuditRow:
    """One audited call: who (token id, or None when no valid token was shown), what, and the status."""

    at: str
    token_id: str | None
    method: str
    path: str
    status: int
    detail: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row_to_token(row: sqlite3.Row) -> Token:
    return Token(
        token_id=row["token_id"],
        scopes=tuple(row["scopes"].split()),
        name=row["name"],
        created=datetime.fromisoformat(row["created"]),
        expires=datetime.fromisoformat(row["expires"]),
        revoked=datetime.fromisoformat(row["revoked"]) if row["revoked"] else None,
    )


class TokenStore:
    """Tokens and audit rows in ``<folder>/service.sqlite`` (one connection, guarded by a lock).

    ``cache_seconds``: how long a looked-up token row is reused before it is read again (a revocation
    takes effect within that time; expiry is checked on every call)."""

    def __init__(self, folder: str | Path, *, cache_seconds: float = 2.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InvalidInputError(
                f"no ledger folder at {self.folder}; create the ledger first with `obliviate ledger init`."
            )
        self.path = self.folder / TOKEN_DB
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Token | None, str | None]] = {}
        self.cache_seconds = cache_seconds
        fresh = not self.path.exists()
        if fresh:  # created private whatever the umask
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=60.0, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._tx() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
        except sqlite3.Error as exc:
            raise ServiceStoreError(
                f"the service's token file {self.path} cannot be opened ({exc}); restore it from a backup, or move "
                "it away and create new tokens with `obliviate token create`."
            ) from exc
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists() and part.stat().st_mode & 0o077:
                os.chmod(part, 0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Tx:
        def __init__(self, store: TokenStore) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            return self.store._db

        def __exit__(self, exc_type, *rest: object) -> None:
            try:
                self.store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            finally:
                self.store._lock.release()

    def _tx(self) -> TokenStore._Tx:
        return TokenStore._Tx(self)

    # ------------------------------------------------------------------ tokens
    def create(
        self, scopes: object, *, name: str = "", days: int = 90, now: datetime | None = None
    ) -> tuple[str, Token]:
        """A new token with ``scopes`` valid ``days`` days: ``(the token, shown once; its stored record)``."""
        from obliviate.request import check_text

        scopes = check_scopes(scopes)
        name = check_text(name, "token name", limit=100, empty=True)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_TOKEN_DAYS:
            raise InvalidInputError(f"--days must be a whole number from 1 to {MAX_TOKEN_DAYS}, got {days!r:.40}.")
        token_id = secrets.token_hex(8)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        token = f"{_PREFIX}{token_id}_{secret}"
        now = now or datetime.now(UTC)
        record = Token(token_id, scopes, name, now, now + timedelta(days=days), None)
        with self._tx() as db:
            db.execute(
                "INSERT INTO tokens(token_id, hash, scopes, name, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, _hash(token), " ".join(scopes), name, now.isoformat(), record.expires.isoformat()),
            )
            db.execute(
                "INSERT INTO audit(at, token_id, method, path, status, detail) VALUES (?, ?, 'CLI', 'token create', 0, ?)",
                (now.isoformat(), token_id, f"scopes {' '.join(scopes)}; expires {record.expires.isoformat()}"),
            )
        return token, record

    def revoke(self, token_id: str) -> Token:
        """Revoke ``token_id`` (it is refused from then on, within ``cache_seconds`` in a running server)."""
        now = datetime.now(UTC).isoformat()
        with self._tx() as db:
            row = db.execute("SELECT * FROM tokens WHERE token_id = ?", (str(token_id),)).fetchone()
            if row is None:
                raise InvalidInputError(f"no token {str(token_id)[:40]!r}; `obliviate token list` lists them.")
            db.execute("UPDATE tokens SET revoked = COALESCE(revoked, ?) WHERE token_id = ?", (now, token_id))
            db.execute(
                "INSERT INTO audit(at, token_id, method, path, status, detail) VALUES (?, ?, 'CLI', 'token revoke', 0, '')",
                (now, token_id),
            )
        self._cache.pop(token_id, None)
        return self.get(token_id)

    def get(self, token_id: str) -> Token:
        with self._lock:
            row = self._db.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
        if row is None:
            raise InvalidInputError(f"no token {str(token_id)[:40]!r}; `obliviate token list` lists them.")
        return _row_to_token(row)

    def list(self) -> list[Token]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM tokens ORDER BY created").fetchall()
        return [_row_to_token(r) for r in rows]

    def authenticate(self, token: str, *, now: datetime | None = None) -> Token | None:
        """The active token record for ``token``, or None (unknown, wrong secret, expired or revoked)."""
        if not isinstance(token, str) or not token.startswith(_PREFIX) or len(token) > 200:
            return None
        token_id, sep, _ = token[len(_PREFIX) :].partition("_")
        if not sep or len(token_id) != 16:
            return None
        cached = self._cache.get(token_id)
        if cached is None or time.monotonic() - cached[0] > self.cache_seconds:
            with self._lock:
                row = self._db.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
            cached = (time.monotonic(), _row_to_token(row) if row else None, row["hash"] if row else None)
            if row is not None:  # misses are not cached: made-up token ids must not grow memory
                self._cache[token_id] = cached
        _, record, stored = cached
        if record is None or stored is None or not hmac.compare_digest(stored, _hash(token)):
            return None
        return record if record.active(now) else None

    # ------------------------------------------------------------------ audit
    def write_audit(self, rows: list[AuditRow]) -> None:
        """Append ``rows`` in one transaction (one fsync)."""
        if not rows:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT INTO audit(at, token_id, method, path, status, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [(r.at, r.token_id, r.method, r.path, r.status, r.detail) for r in rows],
            )

    def audit(self, *, token_id: str | None = None, limit: int = 200, before: int | None = None) -> list[dict]:
        """The newest audit rows first (of one token when given), at most ``limit``, below seq ``before``."""
        sql, params = "SELECT * FROM audit WHERE 1=1", []
        if token_id is not None:
            sql += " AND token_id = ?"
            params.append(token_id)
        if before is not None:
            sql += " AND seq < ?"
            params.append(int(before))
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [dict(r) for r in rows]
