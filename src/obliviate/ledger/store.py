"""The ledger: deletion requests, their lifecycle and an audit trail, durable in SQLite (or PostgreSQL).

:class:`Ledger` is the public API; it writes its SQL once and runs it on a :class:`LedgerStore`:
:class:`SqliteStore` (the embedded default, described below) or, when ``--ledger`` / ``$OBLIVIATE_LEDGER``
is a ``postgresql://`` DSN, :class:`~obliviate.ledger.postgres.PostgresStore` (the same tables, for a
service that several operators and replicas share; its keys and certificate files in ``--ledger-files``).

One SQLite file in WAL mode with ``synchronous=FULL``: a transaction that returned is on disk
(the write-ahead log is fsynced at every commit), and a crash at any point leaves the last
committed state. Every write is one ``BEGIN IMMEDIATE`` transaction, so a change of status and
its audit row land together or not at all.

Lifecycle::

    received -> scheduled -> applied -> verified
        \\            \\
         +-> failed <-+          (failed -> received: retry)

Idempotency: a request is filed under a key, by default the hash of what it asks (its ids and
owners), or one the caller gives; filing the same key again returns the stored request.
Overdue: the deadline has passed and the request is neither applied nor verified.
With a retrain policy set (:mod:`obliviate.ledger.policy`), filing refuses a request whose deadline
the policy cannot guarantee (:class:`~obliviate.ledger.policy.DeadlineUnmeetableError`), in the
same transaction, so nothing of a refused batch is filed.

Creation is explicit: ``Ledger(folder, create=True)`` (``obliviate ledger init``, or the first
``request add``/``import``) makes the database, atomically (built under a temporary name and
hard-linked into place), so ``ledger.sqlite`` is either absent or a whole ledger. ``Ledger(folder)``
opens an existing ledger only: a missing one is :class:`LedgerNotFoundError`; a file that is empty
or not a ledger is :class:`CorruptLedgerError`, never silently replaced, and so is a missing database in
a folder that still holds a ledger's write-ahead log or certificates (the database was lost: restore
it). The new database is read back before it is put in place. The folder is made mode
0700 and the database (with its -wal and -shm files) 0600, whatever the umask. A full disk is
:class:`LedgerDiskFullError` (the transaction rolled back), not "damaged", also when SQLite reports it
as an I/O error (less than 1 MiB free).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from obliviate.errors import (
    CorruptLedgerError,
    InvalidInputError,
    InvalidTransitionError,
    LedgerDiskFullError,
    LedgerNotFoundError,
    LedgerUnavailableError,
    ObliviateError,
    UnknownRequestError,
)
from obliviate.request import MAX_NOTE_CHARS, MAX_OWNER_CHARS, ForgetRequest, check_text

__all__ = [
    "Ledger",
    "LedgerStore",
    "SqliteStore",
    "LedgerRequest",
    "Transition",
    "CorruptLedgerError",
    "LedgerNotFoundError",
    "LedgerDiskFullError",
    "LedgerUnavailableError",
    "InvalidTransitionError",
    "UnknownRequestError",
    "STATUSES",
    "RECEIVED",
    "SCHEDULED",
    "APPLIED",
    "VERIFIED",
    "FAILED",
    "default_ledger_path",
    "default_ledger_location",
    "is_dsn",
    "content_key",
    "check_ledger_request_id",
    "utc_now",
]

RECEIVED, SCHEDULED, APPLIED, VERIFIED, FAILED = "received", "scheduled", "applied", "verified", "failed"
STATUSES = (RECEIVED, SCHEDULED, APPLIED, VERIFIED, FAILED)
#: Allowed moves of the lifecycle; anything else raises :class:`InvalidTransitionError`.
TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({SCHEDULED, FAILED}),
    SCHEDULED: frozenset({APPLIED, FAILED}),
    APPLIED: frozenset({VERIFIED}),
    VERIFIED: frozenset(),
    FAILED: frozenset({RECEIVED}),
}
DONE = (APPLIED, VERIFIED)
DB_NAME = "ledger.sqlite"
SCHEMA_VERSION = "1"
MAX_KEY_CHARS = 200
#: The form of every request id the ledger stores (it names the certificate file).
LEDGER_REQUEST_ID = re.compile(r"req-[0-9a-f]{8,64}")
_SQLITE_FULL, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR = 13, 5, 6, 10
_SQLITE_ACCESS = {3, 8, 14, 23}  # PERM, READONLY, CANTOPEN, AUTH

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    idem_key TEXT NOT NULL UNIQUE,
    ids TEXT NOT NULL,
    owners TEXT NOT NULL,
    note TEXT NOT NULL,
    received TEXT NOT NULL,
    deadline TEXT NOT NULL,
    status TEXT NOT NULL,
    batch_id TEXT,
    resolved_ids TEXT,
    reason TEXT,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_status ON requests(status, deadline);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests(request_id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    at TEXT NOT NULL,
    batch_id TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS transitions_request ON transitions(request_id, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS certificates (
    request_id TEXT PRIMARY KEY REFERENCES requests(request_id),
    batch_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def check_ledger_request_id(request_id: object) -> str:
    """``request_id`` if it is of the ledger's form ``req-<hex>`` (8 to 64 hex digits); else an input error."""
    if not isinstance(request_id, str) or not LEDGER_REQUEST_ID.fullmatch(request_id):
        raise InvalidInputError(
            f"request id {ascii(request_id)[:60]} is not of the form req-<hex>; the ledger names each request "
            "itself (omit request_id), and `obliviate request list` shows the ids."
        )
    return request_id


def _sqlite_error(exc: sqlite3.Error, path: Path) -> ObliviateError:
    """The typed error for a SQLite failure on the ledger at ``path``: disk full, busy, no access, or damaged."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL:
        return LedgerDiskFullError(path, str(exc))
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return LedgerUnavailableError(
            f"the ledger {path} is locked by another command ({exc}); run again once it has finished."
        )
    if primary in _SQLITE_ACCESS:
        return LedgerUnavailableError(
            f"cannot open or write the ledger {path} ({exc}); check that it and its folder are yours and writable."
        )
    if primary == _SQLITE_IOERR:
        if _disk_nearly_full(Path(path).parent):  # SQLite reports a full disk as an I/O error at times (-shm, -wal)
            return LedgerDiskFullError(path, str(exc))
        return CorruptLedgerError(path, f"the disk reported an I/O error: {exc}; check the disk before restoring")
    return CorruptLedgerError(path, str(exc))


#: Below this many free bytes, an I/O error on the ledger is taken for a full disk.
DISK_FULL_BYTES = 1 << 20


def _disk_nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has less than :data:`DISK_FULL_BYTES` free for us."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < DISK_FULL_BYTES


def _remains_of_a_ledger(folder: Path) -> str | None:
    """What in ``folder`` shows a ledger was there (its write-ahead log, or issued certificates), or None."""
    wal = folder / f"{DB_NAME}-wal"
    if wal.exists() or wal.is_symlink():
        return f"its write-ahead log {wal.name}"
    certificates = folder / "certificates"
    if certificates.is_dir() and any(certificates.glob("*.json")):
        return "the certificates it issued (certificates/)"
    return None


def _tighten(path: Path, mode: int) -> None:
    """Set ``path`` to ``mode`` if it is looser (a file we cannot chmod is left as it is)."""
    try:
        if path.stat().st_mode & 0o777 & ~mode:
            os.chmod(path, mode)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def utc_now() -> datetime:
    """The current time in UTC (microseconds kept, so the audit trail orders events)."""
    return datetime.now(UTC)


def default_ledger_path() -> Path:
    """``$OBLIVIATE_LEDGER`` or ``./obliviate-ledger``."""
    return Path(os.environ.get("OBLIVIATE_LEDGER") or "obliviate-ledger")


#: The URI schemes of a PostgreSQL DSN given in place of a ledger folder.
DSN_SCHEMES = ("postgresql://", "postgres://")


def is_dsn(location: object) -> bool:
    """Whether ``location`` (a ``--ledger`` value) is a PostgreSQL DSN rather than a folder."""
    return isinstance(location, str) and location.startswith(DSN_SCHEMES)


def default_ledger_location() -> str | Path:
    """``$OBLIVIATE_LEDGER`` (a folder, or a ``postgresql://`` DSN) or ``./obliviate-ledger``."""
    raw = os.environ.get("OBLIVIATE_LEDGER") or ""
    return raw if is_dsn(raw) else default_ledger_path()


def content_key(ids: Iterable[int], owners: Iterable[str]) -> str:
    """The default idempotency key: sha256 of the sorted ids and owners a request names."""
    body = json.dumps({"ids": sorted({int(i) for i in ids}), "owners": sorted({str(o) for o in owners})})
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LedgerRequest:
    """One stored request: what it asks, its deadline, where it is in its lifecycle."""

    request_id: str
    key: str
    ids: tuple[int, ...]
    owners: tuple[str, ...]
    note: str
    received: datetime
    deadline: datetime
    status: str
    batch_id: str | None
    resolved_ids: tuple[int, ...] | None
    reason: str | None
    updated: datetime

    def overdue(self, now: datetime | None = None) -> bool:
        """The deadline has passed and the request is not yet applied."""
        return self.status not in DONE and (now or utc_now()) > self.deadline

    def to_request(self) -> ForgetRequest:
        return ForgetRequest(
            self.ids or None,
            owners=self.owners or None,
            request_id=self.request_id,
            received=self.received,
            deadline=self.deadline,
            note=self.note,
        )

    def to_dict(self) -> dict:
        return {**self.to_request().to_dict(), "key": self.key, "status": self.status, "batch_id": self.batch_id}


@dataclass(frozen=True)
class Transition:
    """One row of the audit trail."""

    seq: int
    request_id: str
    from_status: str | None
    to_status: str
    at: datetime
    batch_id: str | None
    detail: str | None


def _row_to_request(row: sqlite3.Row) -> LedgerRequest:
    return LedgerRequest(
        request_id=row["request_id"],
        key=row["idem_key"],
        ids=tuple(json.loads(row["ids"])),
        owners=tuple(json.loads(row["owners"])),
        note=row["note"],
        received=datetime.fromisoformat(row["received"]),
        deadline=datetime.fromisoformat(row["deadline"]),
        status=row["status"],
        batch_id=row["batch_id"],
        resolved_ids=tuple(json.loads(row["resolved_ids"])) if row["resolved_ids"] is not None else None,
        reason=row["reason"],
        updated=datetime.fromisoformat(row["updated"]),
    )


def _staged_problem(staged: Path) -> str | None:
    """Why the freshly built database file ``staged`` is not a whole, empty ledger (None when it is)."""
    try:
        db = sqlite3.connect(staged.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"integrity check: {check}"
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            return None if row is not None and row[0] == SCHEMA_VERSION else "no schema version"
        finally:
            db.close()
    except sqlite3.Error as exc:
        return str(exc)


def _schema_statements() -> list[str]:
    return [statement for statement in _SCHEMA.split(";") if statement.strip()]


class LedgerStore(Protocol):
    """What :class:`Ledger` needs of a backend (:class:`SqliteStore`, :class:`~obliviate.ledger.postgres.PostgresStore`).

    Both hold the same tables (``meta``, ``requests``, ``transitions``, ``events``, ``certificates``) with
    the same columns and text encodings; :class:`Ledger` writes its SQL once, with ``?`` placeholders, and
    reads rows by column name. ``folder`` is the ledger's file home (signing keys, exported certificates,
    the service's files); ``location`` names the ledger in messages; ``path`` is what a
    :class:`CorruptLedgerError` names (the database file, or the redacted DSN)."""

    kind: str
    folder: Path
    path: Path | str
    created: bool
    #: Appended to the row reads of a transition: ``" FOR UPDATE"`` where the backend has row locks.
    for_update: str

    @property
    def location(self) -> str: ...

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager: ...

    def query(self, sql: str, params: Sequence = ()) -> list: ...

    def insert_request(self, db, sql: str, params: Sequence) -> bool: ...

    def apply_lock(self) -> AbstractContextManager: ...


class SqliteStore:
    """The SQLite backend: ``ledger.sqlite`` in ``folder`` (WAL, ``synchronous=FULL``), keys and certificates beside it.

    The module docstring says what opening and creation refuse; the apply lock is the file lock
    ``<folder>/apply.lock``."""

    kind = "sqlite"
    #: SQLite's ``BEGIN IMMEDIATE`` already makes every write transaction the only writer.
    for_update = ""

    def __init__(self, folder: str | Path | None = None, *, create: bool = False) -> None:
        self.folder = Path(folder) if folder is not None else default_ledger_path()
        if self.folder.exists() and not self.folder.is_dir():
            raise InvalidInputError(f"--ledger {self.folder} is a file; give the ledger's folder (it holds {DB_NAME}).")
        self.path = self.folder / DB_NAME
        self.created = False
        if not self.path.exists() and not self.path.is_symlink():
            if not create:
                raise LedgerNotFoundError(
                    f"no ledger at {self.folder} (no {DB_NAME} there); check --ledger / $OBLIVIATE_LEDGER, or create "
                    "one with `obliviate ledger init` (the first `obliviate request add` also creates it)."
                )
            remains = _remains_of_a_ledger(self.folder)
            if remains is not None:  # the database was lost: a new one would hide every request filed there
                raise CorruptLedgerError(
                    self.path,
                    f"{DB_NAME} is missing, but the folder holds {remains}; a new ledger here would drop every "
                    "request filed before (and replay a stale log into it). To start afresh instead, use a new folder",
                )
            self.created = self._create()
        if not self.path.is_file():
            raise CorruptLedgerError(self.path, "it is not a regular file")
        if self.path.stat().st_size == 0:
            raise CorruptLedgerError(self.path, "the file is empty (0 bytes), so every request would be lost")
        for part in (self.path, self.folder / f"{DB_NAME}-wal", self.folder / f"{DB_NAME}-shm"):
            _tighten(part, 0o600)
        try:
            uri = self.path.resolve().as_uri() + "?mode=rw"  # never creates a file
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60.0)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self.path) from exc
        try:
            self._db.row_factory = sqlite3.Row
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise CorruptLedgerError(self.path, f"integrity check: {check}")
            if str(mode).lower() != "wal":
                raise CorruptLedgerError(self.path, f"cannot switch to WAL mode (got {mode!r})")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "requests", "transitions"} <= tables:
                raise CorruptLedgerError(self.path, "an SQLite file but not an obliviate ledger (no ledger tables)")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                raise CorruptLedgerError(
                    self.path, f"schema version {row[0] if row else 'missing'}, this obliviate reads {SCHEMA_VERSION}"
                )
            if not {"events", "certificates"} <= tables:  # a ledger made before these tables existed
                with self._transaction() as db:
                    for statement in _schema_statements():
                        db.execute(statement)
        except sqlite3.Error as exc:
            self._db.close()
            raise _sqlite_error(exc, self.path) from exc
        except BaseException:
            self._db.close()
            raise

    def _create(self) -> bool:
        """Build a new ledger under a temporary name and hard-link it into place; False if another process won."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            _tighten(self.folder, 0o700)
            staged = self.folder / f".{DB_NAME}.{uuid.uuid4().hex}.new"
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
            finally:
                os.close(fd)
            try:
                # a rollback journal while staging: COMMIT puts every page in the file itself (with WAL, the
                # pages would reach it only at close, whose checkpoint fails silently on a full disk); opening it
                # switches it to WAL
                db = sqlite3.connect(staged, isolation_level=None)
                try:
                    db.execute("PRAGMA journal_mode=DELETE")
                    db.execute("PRAGMA synchronous=FULL")
                    db.execute("BEGIN IMMEDIATE")
                    for statement in _schema_statements():
                        db.execute(statement)
                    now = utc_now().isoformat()
                    db.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
                    db.execute("INSERT INTO meta(key, value) VALUES ('created', ?)", (now,))
                    db.execute(
                        "INSERT INTO events(at, kind, detail) VALUES (?, 'ledger created', ?)", (now, str(self.folder))
                    )
                    db.execute("COMMIT")
                finally:
                    db.close()
                problem = _staged_problem(staged)
                if problem is not None:
                    if _disk_nearly_full(self.folder):
                        raise LedgerDiskFullError(self.path, "creating the ledger; nothing was created")
                    raise CorruptLedgerError(staged, f"the new ledger did not read back whole: {problem}")
                try:
                    os.link(staged, self.path)  # fails if another process created the ledger first: use that one
                    created = True
                except FileExistsError:
                    created = False
            finally:
                for leftover in (staged, Path(f"{staged}-wal"), Path(f"{staged}-shm")):
                    leftover.unlink(missing_ok=True)
            _fsync_folder(self.folder)
            return created
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self.path) from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise LedgerDiskFullError(self.path, "creating the ledger") from exc
            raise

    @property
    def location(self) -> str:
        """The ledger as messages name it: its folder."""
        return str(self.folder)

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it.

        A SQLite failure becomes the typed error of :func:`_sqlite_error` (disk full, busy, damaged)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite already rolled back (e.g. after SQLITE_FULL)
                raise
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self.path) from exc

    def query(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self.path) from exc

    def insert_request(self, db: sqlite3.Connection, sql: str, params: Sequence) -> bool:
        """Insert a request row; True. (Under ``BEGIN IMMEDIATE`` no other writer can have filed its key since
        :meth:`Ledger.add_many` looked it up, so the insert never meets a conflict.)"""
        db.execute(sql, params)
        return True

    @contextmanager
    def apply_lock(self) -> Iterator[None]:
        """The file lock ``<folder>/apply.lock``: one ``apply`` (or key rotation) at a time on this ledger."""
        from obliviate.ledger.apply import _apply_lock

        with _apply_lock(self.folder):
            yield


class Ledger:
    """The deletion-request ledger: in ``folder`` (``ledger.sqlite``; keys and certificates beside it), or in
    PostgreSQL when ``folder`` is a DSN (``postgresql://...``; keys and certificates in ``files``).

    ``Ledger(folder)`` opens an existing ledger; ``Ledger(folder, create=True)`` also creates one
    if there is none (``created`` says whether it did). See the module docstring for what is
    refused (and :mod:`obliviate.ledger.postgres` for PostgreSQL). Without ``folder``,
    ``$OBLIVIATE_LEDGER`` (a folder or a DSN) or ``./obliviate-ledger``. Use it as a context manager or
    call :meth:`close`.
    """

    def __init__(
        self, folder: str | Path | None = None, *, create: bool = False, files: str | Path | None = None
    ) -> None:
        where = folder if folder is not None else default_ledger_location()
        if is_dsn(where):
            from obliviate.ledger.postgres import PostgresStore

            self._store: LedgerStore = PostgresStore(str(where), create=create, files=files)
        else:
            self._store = SqliteStore(where, create=create)
        self.folder: Path = self._store.folder
        self.path = self._store.path
        self.created: bool = self._store.created

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._store.kind

    @property
    def location(self) -> str:
        """The ledger as messages name it: its folder, or its DSN without the password."""
        return self._store.location

    @property
    def _db(self):
        """The backend's connection (tests and diagnostics only)."""
        return self._store.db

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self):
        """One write transaction of the backend: all of it commits, or none of it (typed errors on failure)."""
        return self._store.transaction()

    def _query(self, sql: str, params: Sequence = ()) -> list:
        return self._store.query(sql, params)

    def apply_lock(self) -> AbstractContextManager:
        """Held by ``apply`` and key rotation: one at a time per ledger (a file lock on SQLite, an advisory lock on
        PostgreSQL, so that replicas sharing one database exclude each other); else :class:`ApplyInProgressError`."""
        return self._store.apply_lock()

    def append_events(self, events: Iterable[tuple[str, str]]) -> None:
        """Append ``(kind, detail)`` rows to the ledger-wide audit trail, in ONE transaction."""
        rows = [(str(kind), str(detail)) for kind, detail in events]
        if not rows:
            return
        now = utc_now().isoformat()
        with self._transaction() as db:
            for kind, detail in rows:
                db.execute("INSERT INTO events(at, kind, detail) VALUES (?, ?, ?)", (now, kind, detail))

    # ------------------------------------------------------------------ filing
    def add(self, request: ForgetRequest, *, key: str | None = None) -> tuple[LedgerRequest, bool]:
        """File ``request``; returns ``(stored, created)``. The same key filed again is the same request."""
        return self.add_many([request], keys=[key])[0]

    def add_many(
        self, requests: Sequence[ForgetRequest], *, keys: Sequence[str | None] | None = None
    ) -> list[tuple[LedgerRequest, bool]]:
        """File several requests in one transaction (one fsync); see :meth:`add`."""
        if not all(isinstance(r, ForgetRequest) for r in requests):
            raise InvalidInputError("add takes obliviate.ForgetRequest objects, e.g. ForgetRequest(owners='alice').")
        keys = list(keys) if keys is not None else [None] * len(requests)
        if len(keys) != len(requests):
            raise InvalidInputError(f"{len(keys)} keys for {len(requests)} requests; give one key per request.")
        from obliviate.ledger.policy import META_KEY, DeadlineUnmeetableError, RetrainPolicy

        moment = utc_now()
        now = moment.isoformat()
        out: list[tuple[LedgerRequest, bool]] = []
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
            policy = RetrainPolicy.from_json(row["value"]) if row is not None and row["value"] else None
            open_now = int(
                db.execute(
                    "SELECT COUNT(*) AS n FROM requests WHERE status IN (?, ?)", (RECEIVED, SCHEDULED)
                ).fetchone()["n"]
            )
            for request, key in zip(requests, keys):
                natural = content_key(request.ids, request.owners)
                if key is not None and not str(key).strip():
                    raise InvalidInputError(
                        "the idempotency key is empty; omit --key to use the request's content hash."
                    )
                key = natural if key is None else check_text(key, "the idempotency key", limit=MAX_KEY_CHARS)
                check_ledger_request_id(request.request_id)
                for owner in request.owners:
                    check_text(owner, "owner", limit=MAX_OWNER_CHARS)
                check_text(request.note, "note", limit=MAX_NOTE_CHARS, empty=True)
                row = db.execute("SELECT * FROM requests WHERE idem_key = ?", (key,)).fetchone()
                if row is not None:
                    stored = _row_to_request(row)
                    if content_key(stored.ids, stored.owners) != natural:
                        raise InvalidInputError(
                            f"key {key!r} was already used for request {stored.request_id} asking for other ids or "
                            "owners; give a new --key for a new request."
                        )
                    out.append((stored, False))
                    continue
                if policy is not None:  # the retrain policy must be able to meet the deadline (module policy)
                    by = policy.guaranteed_by(moment, open_now + 1)
                    if by is None or by > request.deadline:
                        raise DeadlineUnmeetableError(request.deadline, by, policy)
                open_now += 1
                request_id = request.request_id
                if db.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone():
                    # the same content filed in the same second under a new key: name it after its key
                    request_id = "req-" + hashlib.sha256(key.encode()).hexdigest()[:16]
                inserted = self._store.insert_request(
                    db,
                    "INSERT INTO requests(request_id, idem_key, ids, owners, note, received, deadline, status, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        request_id,
                        key,
                        json.dumps(list(request.ids)),
                        json.dumps(list(request.owners)),
                        request.note,
                        request.received.astimezone(UTC).isoformat(),
                        request.deadline.astimezone(UTC).isoformat(),
                        RECEIVED,
                        now,
                    ),
                )
                if not inserted:  # PostgreSQL: a concurrent transaction filed this key first and committed
                    open_now -= 1
                    stored = _row_to_request(db.execute("SELECT * FROM requests WHERE idem_key = ?", (key,)).fetchone())
                    if content_key(stored.ids, stored.owners) != natural:
                        raise InvalidInputError(
                            f"key {key!r} was already used for request {stored.request_id} asking for other ids or "
                            "owners; give a new --key for a new request."
                        )
                    out.append((stored, False))
                    continue
                db.execute(
                    "INSERT INTO transitions(request_id, from_status, to_status, at, detail) VALUES (?, NULL, ?, ?, ?)",
                    (request_id, RECEIVED, now, f"filed under key {key}"),
                )
                out.append(
                    (
                        _row_to_request(
                            db.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
                        ),
                        True,
                    )
                )
        return out

    # ------------------------------------------------------------------ lifecycle
    def transition(
        self,
        request_ids: Iterable[str],
        to: str,
        *,
        batch_id: str | None = None,
        reason: str | None = None,
        resolved_ids: dict[str, Sequence[int]] | None = None,
        certificates: dict[str, str] | None = None,
    ) -> list[LedgerRequest]:
        """Move every request in ``request_ids`` to ``to`` in ONE transaction, with an audit row each.

        ``batch_id`` is recorded when scheduling; ``reason`` when failing; ``resolved_ids`` (request id
        -> the ids it resolved to) when scheduling; ``certificates`` (request id -> signed JSON) are
        stored in the same transaction that marks the requests applied, so a request is applied if and
        only if its certificate is in the ledger. Raises :class:`InvalidTransitionError` (nothing changes)
        if any move is not allowed.
        """
        if to not in STATUSES:
            raise InvalidInputError(f"unknown status {to!r}; one of {', '.join(STATUSES)}.")
        request_ids = list(dict.fromkeys(request_ids))
        if to == APPLIED and set(certificates or {}) != set(request_ids):
            raise InvalidInputError("marking requests applied needs exactly one certificate per request.")
        now = utc_now().isoformat()
        with self._transaction() as db:
            for rid in request_ids:
                row = db.execute(
                    "SELECT status, batch_id FROM requests WHERE request_id = ?" + self._store.for_update, (rid,)
                ).fetchone()
                if row is None:
                    raise UnknownRequestError(
                        f"no request {rid!r} in the ledger {self.location}; `obliviate request list` lists them."
                    )
                current = row["status"]
                if to not in TRANSITIONS[current]:
                    allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final)"
                    raise InvalidTransitionError(
                        f"request {rid} is {current}; it cannot become {to} (from {current} it may become {allowed})."
                    )
                batch = batch_id if to == SCHEDULED else row["batch_id"]
                if to == RECEIVED:  # a retry starts afresh
                    batch = None
                resolved = (
                    json.dumps([int(i) for i in resolved_ids[rid]]) if resolved_ids and rid in resolved_ids else None
                )
                db.execute(
                    "UPDATE requests SET status = ?, batch_id = ?, reason = ?, updated = ?,"
                    " resolved_ids = COALESCE(?, CASE WHEN ? = 'received' THEN NULL ELSE resolved_ids END)"
                    " WHERE request_id = ?",
                    (to, batch, reason if to == FAILED else None, now, resolved, to, rid),
                )
                db.execute(
                    "INSERT INTO transitions(request_id, from_status, to_status, at, batch_id, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (rid, current, to, now, batch, reason),
                )
                if to == APPLIED:
                    db.execute(
                        "INSERT INTO certificates(request_id, batch_id, body, created_at) VALUES (?, ?, ?, ?)",
                        (rid, batch or "", certificates[rid], now),
                    )
        return [self.get(rid) for rid in request_ids]

    # ------------------------------------------------------------------ ledger settings
    def get_meta(self, key: str) -> str | None:
        """A ledger-wide setting (e.g. the pinned signing-key fingerprint), or None if unset."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str, *, event: str, detail: str = "") -> None:
        """Set a ledger-wide setting and record ``event`` in the ledger's audit trail, in ONE transaction."""
        now = utc_now().isoformat()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )
            db.execute("INSERT INTO events(at, kind, detail) VALUES (?, ?, ?)", (now, event, detail))

    def events(self) -> list[tuple[int, datetime, str, str]]:
        """The ledger-wide audit trail (key pins and rotations), oldest first: ``(seq, at, kind, detail)``."""
        return [
            (int(r["seq"]), datetime.fromisoformat(r["at"]), r["kind"], r["detail"] or "")
            for r in self._query("SELECT * FROM events ORDER BY seq")
        ]

    # ------------------------------------------------------------------ reading
    def get(self, request_id: str) -> LedgerRequest:
        rows = self._query("SELECT * FROM requests WHERE request_id = ?", (request_id,))
        if not rows:
            raise UnknownRequestError(
                f"no request {request_id!r} in the ledger {self.location}; `obliviate request list` lists them."
            )
        return _row_to_request(rows[0])

    def requests(self, *, status: str | Iterable[str] | None = None, overdue: bool = False) -> list[LedgerRequest]:
        """Stored requests by deadline (then receipt), optionally only some statuses or the overdue ones."""
        statuses = [status] if isinstance(status, str) else list(status or STATUSES)
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise InvalidInputError(f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}.")
        marks = ", ".join("?" * len(statuses))
        rows = self._query(
            f"SELECT * FROM requests WHERE status IN ({marks}) ORDER BY deadline, received, request_id", statuses
        )
        found = [_row_to_request(r) for r in rows]
        if overdue:
            now = utc_now()
            found = [r for r in found if r.overdue(now)]
        return found

    def due(self) -> list[LedgerRequest]:
        """Requests waiting to be applied (received), oldest deadline first."""
        return self.requests(status=RECEIVED)

    def pending_batches(self) -> dict[str, list[LedgerRequest]]:
        """Batches scheduled but not finished (an ``apply`` that crashed): batch id -> its requests."""
        batches: dict[str, list[LedgerRequest]] = {}
        for r in self.requests(status=SCHEDULED):
            batches.setdefault(r.batch_id or "", []).append(r)
        return batches

    def history(self, request_id: str | None = None) -> list[Transition]:
        """The audit trail, oldest first: every transition of one request, or of all."""
        if request_id is None:
            rows = self._query("SELECT * FROM transitions ORDER BY seq")
        else:
            self.get(request_id)
            rows = self._query("SELECT * FROM transitions WHERE request_id = ? ORDER BY seq", (request_id,))
        return [
            Transition(
                r["seq"],
                r["request_id"],
                r["from_status"],
                r["to_status"],
                datetime.fromisoformat(r["at"]),
                r["batch_id"],
                r["detail"],
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        """Number of requests in each status (every status present, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self._query("SELECT status, COUNT(*) AS n FROM requests GROUP BY status"):
            counts[row["status"]] = int(row["n"])
        return counts

    def next_deadline(self) -> LedgerRequest | None:
        """The open request (received or scheduled) with the earliest deadline."""
        rows = self._query(
            "SELECT * FROM requests WHERE status IN (?, ?) ORDER BY deadline, received LIMIT 1", (RECEIVED, SCHEDULED)
        )
        return _row_to_request(rows[0]) if rows else None

    def certificate(self, request_id: str) -> str | None:
        """The signed certificate JSON stored when ``request_id`` was applied, or None."""
        rows = self._query("SELECT body FROM certificates WHERE request_id = ?", (request_id,))
        return rows[0]["body"] if rows else None

    def certificates(self) -> dict[str, str]:
        """Every stored certificate: request id -> signed JSON."""
        return {
            r["request_id"]: r["body"]
            for r in self._query("SELECT request_id, body FROM certificates ORDER BY request_id")
        }
