"""A document store where deleting a document is unlearning it: SQLite table, FAISS vector index, BM25 keyword index.

Layout of a store folder (mode 0700; every file 0600)::

    store.sqlite    documents (id, owner, text, sha256, vector, minhash), tombstones, batches, meta
    vectors.idx     snapshot of the vector index   } each with the table's generation, the store's id and the
    keywords.idx    snapshot of the keyword index  } sha256 of its payload in its header

**The table is the source of truth.** SQLite in WAL mode with ``synchronous=FULL`` (a commit that returned is on
disk) and ``secure_delete=ON`` (a deleted row's bytes are overwritten with zeros in the database file, not left in a
free page). Every change is one ``BEGIN IMMEDIATE`` transaction that also bumps ``meta.generation``. The indexes
live in memory and are rebuilt from the table when they cannot be trusted; their snapshot files are only a faster
start: a snapshot is used when its header names this store and the table's current generation and its payload
matches the recorded sha256; otherwise (stale, damaged, missing) the index is rebuilt from the table, the reason is
added to :attr:`DocumentStore.repairs` and a new snapshot is written.

**Delete** (``delete(ids)``), in this order:

1. check every id is a live document (an unknown or already deleted id is :class:`~obliviate.errors.UnknownIdsError`
   and nothing changes);
2. unlink the snapshot files if there are any (they hold the documents' vectors and terms; a snapshot is never
   left behind holding deleted content);
3. one transaction: the ids are checked again and the snapshot files unlinked again under the write lock (another
   handle's :meth:`~DocumentStore.save_indexes` writes them under the same lock), the rows leave ``documents``, a
   tombstone (id, owner, the text's sha256, time, batch) is written, the generation is bumped; commit (fsync);
4. the in-memory indexes drop the ids (vector row swapped out and zeroed, BM25 postings removed) and the query
   cache is cleared.

A crash before 3's commit leaves the document fully present (the table has it; indexes are rebuilt from the table
at the next open, since the snapshots are gone or stale); a crash after it leaves it fully gone (not in the table,
and the rebuilt indexes come from the table). No state has the document in one place and not another. Another
process's delete is seen by this one at its next search (the table's generation is read before each search; a
newer one reloads the indexes from the table). ``compact()`` checkpoints and truncates the write-ahead log and
VACUUMs, so no page of a deleted row survives in any file, then writes fresh snapshots.

Test hook: with ``OBLIVIATE_CRASH_AT`` set to one of :data:`CRASH_POINTS` the process SIGKILLs itself there
(as :func:`obliviate.ledger.apply.crash_point` does for the ledger).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import struct
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from obliviate.errors import (
    CorruptStoreError,
    EmbedderMismatchError,
    InvalidInputError,
    StoreNotFoundError,
    UnknownIdsError,
)
from obliviate.retrieval.bm25 import BM25Index
from obliviate.retrieval.embed import Embedder, make_embedder
from obliviate.retrieval.minhash import signature
from obliviate.retrieval.vectors import VectorIndex
from obliviate.storage import atomic_write_bytes

__all__ = [
    "DocumentStore",
    "Document",
    "Hit",
    "DeleteResult",
    "StoreNotFoundError",
    "CorruptStoreError",
    "EmbedderMismatchError",
    "CRASH_POINTS",
    "MODES",
    "RRF_K",
    "rrf",
]

DB_NAME = "store.sqlite"
VECTORS_FILE = "vectors.idx"
KEYWORDS_FILE = "keywords.idx"
SCHEMA_VERSION = "1"
MAGIC = b"OBLVIDX1"
MAX_TEXT_CHARS = 1_000_000
MAX_OWNER_CHARS = 200
MODES = ("hybrid", "vector", "keyword")
#: Reciprocal rank fusion's constant (Cormack, Clarke & Buettcher 2009, "Reciprocal Rank Fusion outperforms
#: Condorcet and individual Rank Learning Methods", Eq. 1: RRFscore(d) = sum_r 1 / (k + r(d)), k = 60).
RRF_K = 60
CRASH_ENV = "OBLIVIATE_CRASH_AT"
#: Where a delete can be stopped by the test hook: before anything, after the snapshots were unlinked, after the
#: table's transaction committed (before the in-memory indexes changed).
CRASH_POINTS = ("store-delete-begun", "store-snapshots-unlinked", "store-committed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    added TEXT NOT NULL,
    vector BLOB NOT NULL,
    minhash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_owner ON documents(owner);
CREATE TABLE IF NOT EXISTS tombstones (
    id INTEGER PRIMARY KEY,
    owner TEXT,
    sha256 TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    batch_id TEXT,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS batches (batch_id TEXT PRIMARY KEY, record TEXT NOT NULL, at TEXT NOT NULL);
"""


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process if ``$OBLIVIATE_CRASH_AT`` is ``name``; otherwise nothing."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def rrf(rankings: Sequence[Sequence[int]], *, k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists (see :data:`RRF_K`): ``(id, score)`` best first, ties by id."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class Document:
    id: int
    owner: str | None
    text: str
    sha256: str
    added: str


@dataclass(frozen=True)
class Hit:
    """One search result: the document, its fused score and its rank (1-based) and score in each index (None when
    that index did not return it)."""

    id: int
    owner: str | None
    text: str
    score: float
    vector_rank: int | None = None
    vector_score: float | None = None
    keyword_rank: int | None = None
    keyword_score: float | None = None


@dataclass
class DeleteResult:
    ids: list[int]
    generation: int
    seconds: float
    batch_id: str | None = None
    recorded: dict = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds: check, snapshots, commit, indexes


def _now() -> str:
    return datetime.now(UTC).isoformat()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_document(text: object, *, where: str = "document") -> str:
    """``text`` if it is a storable document; else :class:`InvalidInputError` with the reason.

    Refused: bytes and other non-strings (binary), text with NUL or other control characters besides tab and
    line breaks (binary content decoded as text), empty or whitespace-only text, text over
    :data:`MAX_TEXT_CHARS` characters."""
    if isinstance(text, bytes | bytearray | memoryview):
        raise InvalidInputError(f"{where} is binary data ({len(text)} bytes); store text (str), e.g. decoded UTF-8.")
    if not isinstance(text, str):
        raise InvalidInputError(f"{where} must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise InvalidInputError(f"{where} is empty (or only whitespace); there is nothing to store or retrieve.")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"{where} has {len(text)} characters, over {MAX_TEXT_CHARS}; split it into passages.")
    bad = [c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"]
    if bad:
        raise InvalidInputError(
            f"{where} contains {len(bad)} control character(s) such as {ascii(bad[0])}: it looks binary; "
            "store plain text."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{where} is not valid Unicode text ({exc.reason}).") from exc
    return text


def _check_owner(owner: object) -> str | None:
    if owner is None:
        return None
    if not isinstance(owner, str) or not owner.strip() or len(owner) > MAX_OWNER_CHARS or not owner.isprintable():
        raise InvalidInputError(
            f"owner {ascii(owner)[:60]} must be a printable string of 1 to {MAX_OWNER_CHARS} characters (or None)."
        )
    return owner


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pack(header: dict, payload: bytes) -> bytes:
    head = json.dumps({**header, "sha256": hashlib.sha256(payload).hexdigest()}, sort_keys=True).encode()
    return MAGIC + struct.pack("<Q", len(head)) + head + payload


def _unpack(raw: bytes) -> tuple[dict, bytes]:
    """``(header, payload)`` of a snapshot file; ValueError with the reason when it cannot be trusted."""
    if len(raw) < 16 or raw[:8] != MAGIC:
        raise ValueError("not an obliviate index file (bad magic)")
    (length,) = struct.unpack("<Q", raw[8:16])
    if 16 + length > len(raw):
        raise ValueError("truncated header")
    header = json.loads(raw[16 : 16 + length])
    payload = raw[16 + length :]
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise ValueError("its payload does not match the sha256 in its header")
    return header, payload


class DocumentStore:
    """A folder of documents with stable ids and owners, searchable by meaning (vectors) and by words (BM25).

    ``DocumentStore(folder)`` opens an existing store; ``create=True`` makes one if there is none. ``embedder`` is
    an :class:`~obliviate.retrieval.embed.Embedder` or a name (``"minilm"``, ``"hashing"``); by default the one the
    store was created with. See the module docstring for durability and what a delete guarantees.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        embedder: Embedder | str | None = None,
        create: bool = False,
        cache_size: int = 256,
    ) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InvalidInputError(f"--store {self.folder} is a file; give the store's folder (it holds {DB_NAME}).")
        self.path = self.folder / DB_NAME
        self.repairs: list[str] = []
        self.created = False
        if not self.path.exists():
            if not create:
                raise StoreNotFoundError(
                    f"no document store at {self.folder} (no {DB_NAME} there); create one with "
                    "`obliviate store init` or DocumentStore(folder, create=True)."
                )
            if embedder is None:
                embedder = "minilm"
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.folder, 0o700)
        self._db = self._connect(create=create)
        self.created = self._meta("schema") is None
        if self.created:
            emb = make_embedder(embedder)
            self._init_schema(emb)
        else:
            self._check_schema()
            recorded, dim = self._meta("embedder"), int(self._meta("dim") or 0)
            if embedder is None:
                emb = make_embedder(recorded)
            else:
                emb = make_embedder(embedder)
                if emb.name != recorded or emb.dim != dim:
                    raise EmbedderMismatchError(
                        f"the store {self.folder} holds {recorded} vectors ({dim} dimensions), not {emb.name} "
                        f"({emb.dim}); open it with embedder={recorded!r} (or omit embedder)."
                    )
        self.embedder = emb
        self.store_id = self._meta("store_id")
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = int(cache_size)
        self._load_indexes()

    # ------------------------------------------------------------------ plumbing
    def _connect(self, *, create: bool) -> sqlite3.Connection:
        try:
            uri = self.path.resolve().as_uri() + ("?mode=rwc" if create else "?mode=rw")
            if create and not self.path.exists():
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
            db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60.0)
            db.row_factory = sqlite3.Row
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            if str(mode).lower() != "wal":
                raise CorruptStoreError(self.path, f"cannot switch to WAL mode (got {mode!r})")
        except sqlite3.Error as exc:
            raise CorruptStoreError(self.path, str(exc)) from exc
        for part in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            if part.exists() and part.stat().st_mode & 0o077:
                os.chmod(part, 0o600)
        return db

    def _meta(self, key: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None  # no meta table yet: a new store
        return row[0] if row else None

    def _init_schema(self, emb: Embedder) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for key, value in (
                ("schema", SCHEMA_VERSION),
                ("store_id", uuid.uuid4().hex),
                ("generation", "0"),
                ("embedder", emb.name),
                ("dim", str(emb.dim)),
                ("created", _now()),
            ):
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _check_schema(self) -> None:
        try:
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.Error as exc:
            raise CorruptStoreError(self.path, str(exc)) from exc
        if check != "ok":
            raise CorruptStoreError(self.path, f"integrity check: {check}")
        if self._meta("schema") != SCHEMA_VERSION:
            raise CorruptStoreError(self.path, f"schema {self._meta('schema')!r}, this obliviate reads {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise CorruptStoreError(self.path, str(exc)) from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DocumentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generation(self) -> int:
        return int(self._meta("generation") or 0)

    # ------------------------------------------------------------------ indexes
    def _snapshot_header(self, kind: str, generation: int, count: int) -> dict:
        return {"kind": kind, "store_id": self.store_id, "generation": generation, "count": count,
                "embedder": self.embedder.name}

    def _read_snapshot(self, name: str, kind: str, generation: int) -> bytes | None:
        path = self.folder / name
        if not path.exists():
            self.repairs.append(f"{name} missing: rebuilt from the table")
            return None
        try:
            header, payload = _unpack(path.read_bytes())
        except (ValueError, OSError) as exc:
            self.repairs.append(f"{name} cannot be trusted ({exc}): rebuilt from the table")
            return None
        if header.get("kind") != kind or header.get("store_id") != self.store_id:
            self.repairs.append(f"{name} belongs to another store or index: rebuilt from the table")
            return None
        if header.get("generation") != generation:
            self.repairs.append(
                f"{name} is stale (generation {header.get('generation')}, table {generation}): rebuilt from the table"
            )
            return None
        return payload

    def _load_indexes(self, *, save: bool = True) -> None:
        """The in-memory indexes from their snapshots when those are current and whole, else from the table.

        The generation and the rows are read in one read transaction (unless the caller holds one), so the
        indexes are exactly the table at :attr:`_generation`. ``save``: write fresh snapshots after a repair."""
        own = not self._db.in_transaction
        known = len(self.repairs)
        if own:
            self._db.execute("BEGIN")
        try:
            rebuilt = self._read_indexes()
        finally:
            if own and self._db.in_transaction:
                self._db.execute("COMMIT")
        if save and rebuilt and len(self.vectors) and len(self.repairs) > known:  # this load found a bad snapshot
            self.save_indexes()
        self._lsh, self._lsh_threshold = None, None
        self._cache.clear()

    def _read_indexes(self) -> bool:
        """The body of :meth:`_load_indexes`; True when an index was rebuilt from the table."""
        generation = self.generation
        self._generation = generation
        n = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        vectors = self._read_snapshot(VECTORS_FILE, "vectors", generation) if n else None
        keywords = self._read_snapshot(KEYWORDS_FILE, "keywords", generation) if n else None
        table_ids = np.asarray([r[0] for r in self._db.execute("SELECT id FROM documents ORDER BY id")], dtype=np.int64)
        self.vectors = VectorIndex(self.embedder.dim, capacity=max(1024, n))
        if vectors is not None:
            try:
                ids = np.frombuffer(vectors[: 8 * n], dtype="<i8")
                matrix = np.frombuffer(vectors[8 * n :], dtype="<f4").reshape(n, self.embedder.dim)
                if not np.array_equal(np.sort(ids), table_ids):
                    raise ValueError("its ids are not the table's documents")
                self.vectors.add(ids, matrix)
            except ValueError as exc:  # the table was changed without a new generation
                self.repairs.append(f"{VECTORS_FILE} does not match the table ({exc}): rebuilt from the table")
                self.vectors, vectors = VectorIndex(self.embedder.dim, capacity=max(1024, n)), None
        if keywords is not None:
            loaded = BM25Index.from_bytes(keywords)
            if not np.array_equal(np.sort(np.fromiter(loaded.lengths, dtype=np.int64)), table_ids):
                self.repairs.append(f"{KEYWORDS_FILE} does not match the table's documents: rebuilt from the table")
                keywords = None
        self.keywords = loaded if keywords is not None else BM25Index()
        if vectors is None or keywords is None:
            rows = self._db.execute("SELECT id, text, vector FROM documents ORDER BY id").fetchall()
            width = 4 * self.embedder.dim
            bad = next((r["id"] for r in rows if len(r["vector"]) != width), None)
            if bad is not None:
                raise CorruptStoreError(self.path, f"document {bad} has a vector that is not {width} bytes")
            if vectors is None and rows:
                matrix = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), -1)
                self.vectors.add(np.asarray([r["id"] for r in rows]), matrix)
            if keywords is None:
                self.keywords = BM25Index.from_texts([r["id"] for r in rows], [r["text"] for r in rows])
            return True
        return False

    def _sync(self) -> None:
        """Reload the indexes if another process changed the table since they were built."""
        if self.generation != self._generation:
            self.repairs.append(f"the table changed in another process (generation {self.generation}): reloaded")
            # no snapshots written from the read path: a reader following a writer's deletes would take the write
            # lock to rewrite both files after each one (and the writer's next delete unlinks them again)
            self._load_indexes(save=False)

    def save_indexes(self) -> None:
        """Write both snapshots atomically (mode 0600), labelled with the generation their content was built from.

        Under the table's write lock (``BEGIN IMMEDIATE``, held while the files are written): no other process
        can commit a change in between, and the generation is read in the same transaction. When the table has
        moved on since the in-memory indexes were built (another process added or deleted), they are reloaded from
        the table first, so a snapshot never claims a generation whose content it does not hold -- in particular it
        never holds a document that the generation it names had deleted. (A delete unlinks the snapshots again
        under the same lock, so one written just before it commits does not outlive it either.)"""
        with self._transaction() as db:
            generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            if generation != self._generation:
                self.repairs.append(f"the table changed in another process (generation {generation}): reloaded")
                self._load_indexes(save=False)
            self._write_snapshots(self._generation)

    def _write_snapshots(self, generation: int) -> None:
        ids = self.vectors.ids
        payload = ids.astype("<i8").tobytes() + np.ascontiguousarray(self.vectors.matrix, dtype="<f4").tobytes()
        atomic_write_bytes(
            self.folder / VECTORS_FILE, _pack(self._snapshot_header("vectors", generation, len(ids)), payload),
            mode=0o600,
        )
        state = self.keywords.to_bytes()
        atomic_write_bytes(
            self.folder / KEYWORDS_FILE,
            _pack(self._snapshot_header("keywords", generation, len(self.keywords)), state),
            mode=0o600,
        )

    def _unlink_snapshots(self) -> None:
        self._drop_snapshot_files()

    def _drop_snapshot_files(self) -> None:
        removed = False
        for name in (VECTORS_FILE, KEYWORDS_FILE):
            path = self.folder / name
            if path.exists():
                path.unlink()
                removed = True
        if removed:
            _fsync_folder(self.folder)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def ids(self) -> list[int]:
        return [int(r[0]) for r in self._db.execute("SELECT id FROM documents ORDER BY id")]

    def deleted_ids(self) -> list[int]:
        return [int(r[0]) for r in self._db.execute("SELECT id FROM tombstones ORDER BY id")]

    def ids_of_owners(self, owners: Iterable[str]) -> list[int]:
        owners = list(owners)
        marks = ",".join("?" * len(owners))
        rows = self._db.execute(f"SELECT id FROM documents WHERE owner IN ({marks}) ORDER BY id", owners)
        return [int(r[0]) for r in rows]

    def get(self, doc_id: int) -> Document:
        row = self._db.execute("SELECT id, owner, text, sha256, added FROM documents WHERE id = ?", (int(doc_id),))
        row = row.fetchone()
        if row is None:
            raise UnknownIdsError([doc_id], where="the document store")
        return Document(int(row["id"]), row["owner"], row["text"], row["sha256"], row["added"])

    def documents(self, ids: Iterable[int] | None = None) -> list[Document]:
        if ids is None:
            rows = self._db.execute("SELECT id, owner, text, sha256, added FROM documents ORDER BY id").fetchall()
        else:
            wanted = sorted({int(i) for i in ids})
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += self._db.execute(
                    f"SELECT id, owner, text, sha256, added FROM documents WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
        return [Document(int(r["id"]), r["owner"], r["text"], r["sha256"], r["added"]) for r in rows]

    def vector_of(self, doc_id: int) -> np.ndarray:
        return self.vectors.vector(doc_id)

    def minhash_rows(self) -> Iterator[tuple[int, bytes]]:
        for row in self._db.execute("SELECT id, minhash FROM documents ORDER BY id"):
            yield int(row[0]), bytes(row[1])

    def state_sha256(self, *, excluding: Iterable[int] = ()) -> str:
        """sha256 over the live documents' ``(id, text sha256)`` in id order (``excluding`` some ids: the hash the
        store will have once they are deleted): what a certificate pins."""
        skip = {int(i) for i in excluding}
        h = hashlib.sha256()
        for row in self._db.execute("SELECT id, sha256 FROM documents ORDER BY id"):
            if row[0] not in skip:
                h.update(f"{row[0]}:{row[1]}\n".encode())
        return h.hexdigest()

    def presence(self, ids: Iterable[int]) -> dict[str, list[int]]:
        """Which of ``ids`` are still in the table, the vector index, the keyword index and the snapshot files."""
        ids = sorted({int(i) for i in ids})
        table = {d.id for d in self.documents(ids)}
        out = {
            "table": [i for i in ids if i in table],
            "vector index": [i for i in ids if i in self.vectors],
            "keyword index": [i for i in ids if i in self.keywords],
        }
        wanted = set(ids)
        files: set[int] = set()
        for name in (VECTORS_FILE, KEYWORDS_FILE):
            path = self.folder / name
            if not path.exists():
                continue
            try:
                header, payload = _unpack(path.read_bytes())
            except (ValueError, OSError):
                continue
            if name == VECTORS_FILE:
                n = int(header.get("count", 0))
                files |= wanted & set(np.frombuffer(payload[: 8 * n], dtype="<i8").tolist())
            else:
                files |= wanted & set(BM25Index.from_bytes(payload).lengths)
        out["index files"] = sorted(files)
        return out

    # ------------------------------------------------------------------ writing
    def add(self, texts: Sequence[str], *, owners: Sequence[str | None] | None = None,
            vectors: np.ndarray | None = None) -> list[int]:
        """Store ``texts`` (with ``owners``) in one transaction; returns their new ids (never reused).

        ``vectors`` (optional, ``(n, dim)`` unit rows) skips the embedder, e.g. when they were computed elsewhere
        by the same model."""
        if isinstance(texts, str | bytes):
            raise InvalidInputError("add takes a list of documents, e.g. store.add(['some text']).")
        texts = [check_document(t, where=f"document {k}") for k, t in enumerate(texts)]
        owners = [None] * len(texts) if owners is None else [_check_owner(o) for o in owners]
        if len(owners) != len(texts):
            raise InvalidInputError(f"{len(owners)} owners for {len(texts)} documents; give one owner per document.")
        if not texts:
            return []
        if vectors is None:
            vectors = self.embedder.embed(texts)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.embedder.dim):
            raise InvalidInputError(f"vectors have shape {vectors.shape}, expected ({len(texts)}, {self.embedder.dim}).")
        signatures = [signature(t) for t in texts]
        now = _now()
        self._sync()
        with self._transaction() as db:
            # another process may have committed since _sync: reload under the lock, so the indexes this add extends
            # are the table's (else a document deleted in between would stay in them, labelled current)
            generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            if generation != self._generation:
                self.repairs.append(f"the table changed in another process (generation {generation}): reloaded")
                self._load_indexes(save=False)
            new_ids = []
            for text, owner, vec, sig in zip(texts, owners, vectors, signatures):
                cur = db.execute(
                    "INSERT INTO documents(owner, text, sha256, added, vector, minhash) VALUES (?, ?, ?, ?, ?, ?)",
                    (owner, text, text_sha256(text), now, vec.astype("<f4").tobytes(), sig),
                )
                new_ids.append(int(cur.lastrowid))
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self._generation = generation + 1
        self.vectors.add(np.asarray(new_ids), vectors)
        for doc_id, text in zip(new_ids, texts):
            self.keywords.add(doc_id, text)
        if self._lsh is not None:
            from obliviate.retrieval.minhash import from_signature

            for doc_id, sig in zip(new_ids, signatures):
                self._lsh.insert(doc_id, from_signature(sig))
        self._cache.clear()
        return new_ids

    def batch_record(self, batch_id: str) -> dict | None:
        """The record stored with a committed delete batch (``delete(..., batch_id=..., record=...)``), or None."""
        row = self._db.execute("SELECT record FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, ids: Iterable[int], *, batch_id: str | None = None, reason: str = "",
               record: dict | None = None) -> DeleteResult:
        """Delete documents from the table, both indexes, the snapshots and the cache; see the module docstring.

        ``batch_id`` and ``record`` are stored in the same transaction (so a caller that crashed after the commit
        finds its record with :meth:`batch_record`)."""
        started = time.perf_counter()
        if isinstance(ids, int | np.integer):
            ids = [ids]
        try:
            wanted = sorted({int(i) for i in ids})
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"ids must be integers, got {ids!r}.") from exc
        if not wanted:
            raise InvalidInputError("delete needs at least one document id.")
        self._sync()
        crash_point("store-delete-begun")
        live = {d.id: d for d in self.documents(wanted)}
        missing = [i for i in wanted if i not in live]
        if missing:
            raise UnknownIdsError(missing, where="the document store (unknown or already deleted)")
        checked = time.perf_counter()
        self._unlink_snapshots()
        crash_point("store-snapshots-unlinked")
        unlinked = time.perf_counter()
        now = _now()
        marks = ",".join("?" * len(wanted))
        with self._transaction() as db:
            # checked again under the write lock: another process may have deleted one since the check above
            present = {row[0] for row in db.execute(f"SELECT id FROM documents WHERE id IN ({marks})", wanted)}
            if len(present) != len(wanted):
                raise UnknownIdsError(
                    [i for i in wanted if i not in present], where="the document store (deleted meanwhile by another process)"
                )
            # and the snapshots once more: another handle's save_indexes may have written them since the unlink above
            # (it holds this lock while it writes, so none can appear between here and the commit)
            self._drop_snapshot_files()
            for doc_id in wanted:
                doc = live[doc_id]
                db.execute(
                    "INSERT INTO tombstones(id, owner, sha256, deleted_at, batch_id, reason) VALUES (?, ?, ?, ?, ?, ?)",
                    (doc_id, doc.owner, doc.sha256, now, batch_id, reason),
                )
            db.execute(f"DELETE FROM documents WHERE id IN ({marks})", wanted)
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            if batch_id is not None:
                db.execute(
                    "INSERT INTO batches(batch_id, record, at) VALUES (?, ?, ?)",
                    (batch_id, json.dumps(record or {"ids": wanted}, sort_keys=True), now),
                )
        crash_point("store-committed")
        committed = time.perf_counter()
        self._generation += 1
        self.vectors.remove(wanted)
        self.keywords.remove(wanted)
        if self._lsh is not None:
            for doc_id in wanted:
                if self._lsh.keys.has_key(doc_id):
                    self._lsh.remove(doc_id)
        self._cache.clear()
        done = time.perf_counter()
        phases = {"check": checked - started, "snapshots": unlinked - checked, "commit": committed - unlinked,
                  "indexes": done - committed}
        return DeleteResult(wanted, self._generation, done - started, batch_id, record or {}, phases)

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and truncate it, so a delete's zeroed pages replace the
        old ones on disk (``secure_delete`` zeroes rows; under WAL the old bytes stay in ``store.sqlite`` until a
        checkpoint). False when another connection's open read holds the old pages: retry once it closes, or run
        :meth:`compact`."""
        try:
            busy, log, done = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise CorruptStoreError(self.path, str(exc)) from exc
        return busy == 0 and log in (0, done)

    def compact(self) -> None:
        """Leave no trace of deleted rows in any file: checkpoint and truncate the WAL, VACUUM, fresh snapshots."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise CorruptStoreError(self.path, str(exc)) from exc
        self.vectors.shrink()
        self.save_indexes()

    # ------------------------------------------------------------------ search
    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def search(self, query: str, *, k: int = 5, mode: str = "hybrid", depth: int = 50) -> list[Hit]:
        """The ``k`` best documents for ``query``: by meaning (``vector``), by words (``keyword``, BM25) or both
        fused by reciprocal rank (``hybrid``, each index's top ``depth``; see :func:`rrf`)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("the query is empty; ask something, e.g. store.search('capital of France').")
        if mode not in MODES:
            raise InvalidInputError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}.")
        self._sync()
        key = (query, k, mode, depth)
        if key in self._cache:
            self._cache.move_to_end(key)
            return list(self._cache[key])
        pool = max(k, depth) if mode == "hybrid" else k
        vec = self.vectors.search(self.embed_query(query), pool) if mode in ("hybrid", "vector") else []
        kw = self.keywords.search(query, pool) if mode in ("hybrid", "keyword") else []
        vrank = {d: (r, s) for r, (d, s) in enumerate(vec, start=1)}
        krank = {d: (r, s) for r, (d, s) in enumerate(kw, start=1)}
        if mode == "vector":
            ranked = vec[:k]
        elif mode == "keyword":
            ranked = kw[:k]
        else:
            ranked = rrf([[d for d, _ in vec], [d for d, _ in kw]])[:k]
        docs = {d.id: d for d in self.documents([d for d, _ in ranked])}
        hits = []
        for doc_id, score in ranked:
            doc = docs[doc_id]
            v, w = vrank.get(doc_id), krank.get(doc_id)
            hits.append(
                Hit(doc_id, doc.owner, doc.text, float(score), v[0] if v else None, v[1] if v else None,
                    w[0] if w else None, w[1] if w else None)
            )
        self._cache[key] = tuple(hits)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return hits

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def cached_ids(self) -> set[int]:
        """Every document id held in the query cache (a delete leaves none of its ids here)."""
        return {h.id for hits in self._cache.values() for h in hits}

    def lsh(self, threshold: float):  # noqa: ANN201 - a datasketch.MinHashLSH
        """The MinHash LSH index of every live document (built on first use, kept in step with adds and deletes)."""
        from datasketch import MinHashLSH

        from obliviate.retrieval.minhash import NUM_PERM, from_signature

        self._sync()
        if self._lsh is None or self._lsh_threshold != threshold:
            lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
            with lsh.insertion_session() as session:
                for doc_id, raw in self.minhash_rows():
                    session.insert(doc_id, from_signature(raw))
            self._lsh, self._lsh_threshold = lsh, threshold
        return self._lsh
