"""A document store as a deletion target of the ledger: ``obliviate apply --store DIR`` deletes exactly.

:class:`StoreTarget` implements :class:`obliviate.ledger.targets.Target`, so the ledger's ``apply`` and ``verify``
run on a store as on a SISA folder:

- requests name document ids or owners; :meth:`StoreTarget.dataset` is the store's id/owner table as an obliviate
  :class:`~obliviate.data.dataset.Dataset` (every id ever stored, deleted ones included, so a request for an id
  deleted by an earlier batch resolves and is reported as already deleted; features are a placeholder);
- :meth:`StoreTarget.delete` expands the request's live documents under the :class:`ExpansionPolicy` (near-
  duplicates, quotations, paraphrases; ``policy=None``: no expansion), deletes all of them in ONE store
  transaction that also stores the batch's record, and returns that record; a batch already committed (a rerun
  after a crash) returns its stored record without deleting again. The guarantee is ``exact``: the documents
  are gone from the table, both indexes, the snapshots and the cache, which is what answers are built from;
- the "model hash" of a store is :meth:`DocumentStore.state_sha256` (its live documents' ids and text hashes),
  recomputed from the database file on disk by :meth:`weights_on_disk`, which also reports a snapshot that still
  holds a deleted id and a database that fails SQLite's integrity check;
- :meth:`ids_still_present` looks for ids in the table, both in-memory indexes and the snapshot files.

The accepted expansions travel in the certificate's evidence (``expanded_ids``, with each candidate's scores but
not its text: a certificate, and the batch record kept in the store, must not hold the content they certify gone),
per request (:meth:`details_for`: the copies of that request's documents), and ``verify`` checks that they are gone
too. A store keeps changing after a certificate (documents added, others deleted), so the certificate also pins
the largest id stored and the moment just before the batch's delete; :meth:`replayed_sha256` rebuilds the store's
hash as of the certificate from the table and the tombstones on disk, which the model hash check accepts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from obliviate.errors import InvalidInputError
from obliviate.ledger.targets import Deletion, Target
from obliviate.retrieval.expand import ExpansionPolicy, expand
from obliviate.retrieval.store import DB_NAME, DocumentStore, StoreNotFoundError, _now

__all__ = ["StoreTarget"]


class StoreTarget(Target):
    """The document store in ``folder`` (see the module docstring)."""

    kind = "store"

    def __init__(self, folder: str | Path, *, policy: ExpansionPolicy | None = ExpansionPolicy()) -> None:
        self.folder = Path(folder)
        if not (self.folder / DB_NAME).is_file():
            raise StoreNotFoundError(
                f"--store {self.folder} holds no document store ({DB_NAME}); create one with `obliviate store init`."
            )
        self.store = DocumentStore(self.folder)
        self.policy = policy

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ what the ledger resolves against
    def dataset(self):  # noqa: ANN201 - obliviate Dataset
        """Every id ever stored with its owner (``""`` for none), as a Dataset (placeholder features)."""
        from obliviate.data.loaders import from_arrays

        rows = self.store._db.execute(
            "SELECT id, MIN(owner) FROM (SELECT id, owner FROM documents UNION ALL SELECT id, owner FROM tombstones) "
            "GROUP BY id ORDER BY id"
        ).fetchall()
        if not rows:
            raise InvalidInputError(f"the store {self.folder} has never held a document; add documents first.")
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        owners = [r[1] or "" for r in rows]
        return from_arrays(np.zeros((len(ids), 1), dtype=np.float32), np.zeros(len(ids), dtype=np.int64), ids=ids,
                           owners=owners, num_classes=1, name=f"store:{self.store.store_id}")

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.folder.resolve()), "store_id": self.store.store_id,
                "embedder": self.store.embedder.name,
                "expansion_policy": asdict(self.policy) if self.policy is not None else None}

    def data_fingerprint(self) -> str | None:
        return self.dataset().fingerprint

    # ------------------------------------------------------------------ deleting
    def delete(self, ids: np.ndarray, data, *, batch_id: str) -> Deletion:
        recorded = self.store.batch_record(batch_id)
        if recorded is not None:  # committed before a crash: the record, without deleting twice
            return Deletion(**{**recorded, "recovered": True})
        started = time.perf_counter()
        wanted = sorted({int(i) for i in ids})
        deleted = set(self.store.deleted_ids())
        live = set(self.store.ids())
        unknown = [i for i in wanted if i not in deleted and i not in live]
        if unknown:
            from obliviate.errors import UnknownIdsError

            raise UnknownIdsError(unknown, where="the document store")
        fresh = [i for i in wanted if i in live]
        already = [i for i in wanted if i in deleted]
        before = self.store.state_sha256()
        expansion = expand(self.store, fresh, policy=self.policy) if fresh and self.policy is not None else None
        extra = [i for i in (expansion.accepted_ids if expansion else []) if i not in set(fresh)]
        gone = sorted(set(fresh) | set(extra))
        after = self.store.state_sha256(excluding=gone)
        last_id = self.store._db.execute(
            "SELECT MAX(id) FROM (SELECT id FROM documents UNION ALL SELECT id FROM tombstones)"
        ).fetchone()[0]
        deletion = Deletion(
            batch_id=batch_id,
            method="store-delete" + ("+expansion" if self.policy is not None else ""),
            guarantee="exact",
            removed_ids=fresh,
            already_deleted_ids=already,
            model_sha256_before=before,
            model_sha256_after=after,
            seconds=0.0,
            model_files={DB_NAME: after},
            details={
                "expanded_ids": extra,
                "expansion": [_scores(c.to_dict()) for c in expansion.candidates] if expansion else [],
                "store_last_id": int(last_id or 0),
                "store_time": _now(),  # every earlier delete is before it, this batch's and later ones after
                "oracle": "exact: the documents are gone from the table, both indexes, the snapshots and the cache",
            },
        )
        if gone:
            deletion.seconds = time.perf_counter() - started
            self.store.delete(gone, batch_id=batch_id, reason="ledger", record=deletion.to_dict())
            # the deleted text's old pages leave store.sqlite only at a checkpoint; a reader holding them is reported
            deletion.details["wal_checkpointed"] = self.store.checkpoint()
        deletion.seconds = time.perf_counter() - started
        return deletion

    def details_for(self, deletion: Deletion, forget_ids: list[int]) -> dict:
        """The batch's details cut to one request: the candidates examined for ITS documents and the copies of them
        deleted with it (``expanded_ids``), so a certificate names no other request's documents."""
        details = dict(deletion.details)
        asked = {int(i) for i in forget_ids}
        mine = [c for c in details.get("expansion", []) if c.get("of") in asked]
        details["expansion"] = mine
        details["expanded_ids"] = sorted({int(c["id"]) for c in mine if c.get("kind")} - asked)
        return details

    def replayed_sha256(self, cert: dict) -> tuple[str | None, str]:
        """The store's hash right after ``cert``'s batch, rebuilt from the database on disk now: the live documents
        with an id up to the largest stored then (later ones were added after it), plus the tombstones of those ids
        deleted after the batch by another batch or by hand. A deleted document written back is in the table again
        (with an old id, or with its tombstone gone), so it changes this hash."""
        evidence = cert.get("evidence") if isinstance(cert.get("evidence"), dict) else {}
        last_id, at, batch_id = evidence.get("store_last_id"), evidence.get("store_time"), cert.get("batch_id")
        if isinstance(last_id, bool) or not isinstance(last_id, int) or not isinstance(at, str):
            return None, "the certificate does not pin the store's last id and time (written before they were)"
        path = self.folder / DB_NAME
        try:
            db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT id, sha256 FROM documents WHERE id <= ?", (last_id,)).fetchall()
                later = db.execute(
                    "SELECT id, sha256 FROM tombstones WHERE id <= ? AND deleted_at > ? AND batch_id IS NOT ?",
                    (last_id, at, batch_id),
                ).fetchall()
                added = db.execute("SELECT COUNT(*) FROM documents WHERE id > ?", (last_id,)).fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error as exc:
            return None, f"the store's database cannot be read ({exc})"
        h = hashlib.sha256()
        for doc_id, sha in sorted(rows + later):
            h.update(f"{doc_id}:{sha}\n".encode())
        return h.hexdigest(), (
            f"the store's hash as of batch {batch_id}, replayed from its table and tombstones on disk ({added} "
            f"document(s) added and {len(later)} deleted since)"
        )

    # ------------------------------------------------------------------ what verify asks
    def module(self):  # noqa: ANN201 - a store has no module
        raise InvalidInputError("a document store has no model module; its evidence is the store itself.")

    def deleted_ids(self) -> set[int]:
        return set(self.store.deleted_ids())

    def current_sha256(self) -> str:
        return self.store.state_sha256()

    def weights_on_disk(self) -> tuple[str | None, dict[str, str]]:
        """The state hash recomputed from the database file as it is on disk now (a fresh read-only connection), and
        the problems found: a failed integrity check, a snapshot that holds a deleted id."""
        problems: dict[str, str] = {}
        path = self.folder / DB_NAME
        try:
            db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                check = db.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    problems[str(path)] = f"integrity check: {check}"
                h = hashlib.sha256()
                for doc_id, sha in db.execute("SELECT id, sha256 FROM documents ORDER BY id"):
                    h.update(f"{doc_id}:{sha}\n".encode())
                digest = h.hexdigest()
                tombstones = [int(r[0]) for r in db.execute("SELECT id FROM tombstones")]
            finally:
                db.close()
        except sqlite3.Error as exc:
            return None, {str(path): f"unreadable ({exc})"}
        stale = self.store.presence(tombstones)["index files"] if tombstones else []
        if stale:
            problems[str(self.folder)] = f"index snapshot(s) still hold deleted id(s) {stale[:10]}"
        return digest, problems

    def ids_still_present(self, ids: list[int]) -> list[int]:
        self.store._sync()
        presence = self.store.presence(ids)
        return sorted({i for found in presence.values() for i in found})

    def evidence(self, forget_ids: list[int], data, *, test=None, seed: int = 0) -> dict:
        presence = self.store.presence(forget_ids)
        return {
            "forget_documents": len(forget_ids),
            "still_present": {where: found for where, found in presence.items()},
            "store_generation": self.store.generation,
            "documents_left": len(self.store),
        }


def _scores(candidate: dict) -> dict:
    """A candidate as the certificate keeps it: ids, kind and scores, not the text (it may be deleted content)."""
    return {key: value for key, value in candidate.items() if key != "text"}
