"""Group commit: concurrent filings land in the ledger in one transaction (one fsync) per group.

Durability is not relaxed: a filing is acknowledged only after :meth:`Ledger.add_many` returned,
i.e. after the ledger's ``BEGIN IMMEDIATE ... COMMIT`` with ``synchronous=FULL`` fsynced its
write-ahead log. What group commit changes is how many filings share that fsync: one writer thread
takes every filing queued while the previous group was being committed and files them together
(DeWitt et al., "Implementation techniques for main memory database systems", SIGMOD 1984, Sec. 4;
the same idea as PostgreSQL's ``commit_delay``). Under no load a group is one filing and nothing
waits; under load the group grows with the queue, so the fsyncs per second stay bounded while the
filings per second grow.

The ledger already has the bulk call this needs (``add_many``, one transaction for many). If one
filing in a group is refused by the ledger (an idempotency key reused for other content), the whole
transaction rolls back and the group is filed again in halves (bisection), so only that filing gets the
error.

Audit rows of the service's calls are written by the same thread, in groups of up to
:data:`AUDIT_BATCH` or every :data:`AUDIT_DELAY` seconds, to the service's own file
(:mod:`obliviate.service.tokens`); a kill can lose the audit rows of the last 0.2 s (the filings
themselves are in the ledger's own trail, with the filing token in their key).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.errors import ObliviateError
from obliviate.request import ForgetRequest
from obliviate.service.tokens import AuditRow, TokenStore

__all__ = ["GroupCommitter", "Filing"]

#: The most filings committed in one transaction (a larger queue is committed in several).
MAX_GROUP = 512
#: Audit rows are written when this many are waiting, or when the oldest has waited AUDIT_DELAY seconds.
AUDIT_BATCH = 256
AUDIT_DELAY = 0.2
_FLUSH = object()


@dataclass
class Filing:
    request: ForgetRequest
    key: str
    future: Future = field(default_factory=Future)


class GroupCommitter:
    """A writer thread with its own ledger connection; :meth:`file` queues, the thread commits in groups."""

    def __init__(
        self,
        folder: str | Path,
        tokens: TokenStore | None = None,
        *,
        max_group: int = MAX_GROUP,
        files: str | Path | None = None,
    ) -> None:
        from obliviate.ledger.store import is_dsn

        self.folder = folder if is_dsn(folder) else Path(folder)  # the ledger's folder, or a PostgreSQL DSN
        self.files = files
        self.max_group = max(1, int(max_group))  # 1: every filing in its own transaction (no group commit)
        self.tokens = tokens
        self._queue: queue.Queue = queue.Queue()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop = False
        self.groups = 0
        self.filed = 0
        self.largest_group = 0
        self._thread = threading.Thread(target=self._run, name="obliviate-group-commit", daemon=True)

    def start(self) -> GroupCommitter:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        self._stop = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def file(self, request: ForgetRequest, key: str) -> Future:
        """Queue ``request`` under the ledger key ``key``; the future gives ``(LedgerRequest, created)``."""
        filing = Filing(request, key)
        if self._stop or not self._thread.is_alive():
            filing.future.set_exception(RuntimeError("the server is shutting down; file the request again."))
            return filing.future
        self._queue.put(filing)
        return filing.future

    def audit(self, row: AuditRow) -> None:
        """Queue one audit row (written with the next group)."""
        self._queue.put(row)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        from obliviate.ledger import Ledger

        try:
            ledger = Ledger(self.folder, files=self.files)
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        audits: list[AuditRow] = []
        oldest = 0.0
        try:
            while True:
                wait = None if not audits else max(0.0, oldest + AUDIT_DELAY - time.monotonic())
                try:
                    first = self._queue.get(timeout=wait)
                except queue.Empty:
                    first = _FLUSH
                items = [first]
                filed = isinstance(first, Filing)
                while filed < self.max_group:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    items.append(item)
                    filed += isinstance(item, Filing)
                filings = [i for i in items if isinstance(i, Filing)]
                if filings:
                    self._commit(ledger, filings)
                fresh = [i for i in items if isinstance(i, AuditRow)]
                if fresh and not audits:
                    oldest = time.monotonic()
                audits += fresh
                stopping = any(i is None for i in items) and self._stop
                if audits and (stopping or len(audits) >= AUDIT_BATCH or time.monotonic() - oldest >= AUDIT_DELAY):
                    self._write_audit(audits)
                    audits = []
                if stopping:
                    break
        finally:
            ledger.close()
            while True:  # fail anything still queued: the caller retries under its key
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, Filing) and not item.future.done():
                    item.future.set_exception(RuntimeError("the server is shutting down; file the request again."))

    def _write_audit(self, rows: list[AuditRow]) -> None:
        if self.tokens is None:
            return
        try:
            self.tokens.write_audit(rows)
        except Exception:  # noqa: BLE001 - an audit failure must not stop filings
            pass

    def _commit(self, ledger, filings: list[Filing]) -> None:
        try:
            stored = ledger.add_many([f.request for f in filings], keys=[f.key for f in filings])
        except ObliviateError as exc:
            if len(filings) == 1:
                filings[0].future.set_exception(exc)
                return
            # one bad filing rolled the group back: file each half again (bisection), so only it fails
            # and a group with one bad filing costs about 2 log2(n) transactions, not n
            half = len(filings) // 2
            self._commit(ledger, filings[:half])
            self._commit(ledger, filings[half:])
            return
        except BaseException as exc:  # noqa: BLE001 - reported to every waiting caller
            for f in filings:
                f.future.set_exception(exc)
            return
        self.groups += 1
        self.largest_group = max(self.largest_group, len(filings))
        self.filed += sum(1 for _, created in stored if created)
        for filing, result in zip(filings, stored):
            filing.future.set_result(result)
