"""kill -9 on a PostgreSQL ledger: 20 applies and 20 filing runs killed at random points; nothing lost or doubled.

The design of ``test_kill9.py`` (a forked child per round, SIGKILL after a seeded random delay, checks on a
fresh connection afterwards), bounded to 20 rounds each, on the throwaway server of ``pg_server``:

- **apply**: each round files one request and kills a child's ``apply`` somewhere between before the
  advisory lock and after a clean exit. After every round: every filed request is in the ledger, none
  failed; applied exactly when its certificate is stored; no id removed by two batches (none applied
  twice); the ensemble's deleted ids lie between the applied ids and those plus the scheduled ones; the
  advisory lock died with the child (the next apply takes it). A final apply finishes and every
  certificate verifies.
- **filing**: a child files requests one at a time and appends each key to an acknowledgement file
  only once ``add`` returned (the commit is acknowledged); it is killed mid-run. Every acknowledged key is
  in the ledger (0 lost), each key is one request with one ``received`` audit row (0 duplicated), and
  filing every key again creates nothing.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback

import numpy as np

import obliviate as ob
from obliviate.exact import SISAEnsemble
from obliviate.ledger import (
    APPLIED,
    FAILED,
    RECEIVED,
    SCHEDULED,
    VERIFIED,
    Ledger,
    SisaTarget,
    apply,
    verify_certificate,
)

ROUNDS = 20


def _fork(work) -> int:
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            import torch

            torch.set_num_threads(1)
            work()
            code = 0
        except BaseException:  # noqa: BLE001 - report anything, then leave without running pytest's exit code
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _kill_after(pid: int, delay: float | None) -> tuple[bool, float]:
    started = time.perf_counter()
    status = None
    if delay is not None:
        while status is None and time.perf_counter() - started < delay:
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
            time.sleep(0.002)
        if status is None:
            os.kill(pid, signal.SIGKILL)
    if status is None:
        _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0), f"the child failed (status {status})"
    return killed, time.perf_counter() - started


def test_kill_9_of_apply_on_postgres_loses_nothing_and_applies_nothing_twice(pg_dsn, crash_folder, owned_data):
    files, sisa_folder = crash_folder / "files", crash_folder / "ensemble"
    rng = np.random.default_rng(17)
    pool = [int(i) for i in rng.permutation(owned_data.ids)]
    filed: dict[str, set[int]] = {}

    def open_ledger() -> Ledger:
        return Ledger(pg_dsn, files=files, create=True)

    def file_request(round_: int) -> None:
        with open_ledger() as book:
            stored, _ = book.add(ob.ForgetRequest(ids=[pool[round_]]))
            filed[stored.request_id] = {pool[round_]}

    def run_apply() -> None:
        with Ledger(pg_dsn, files=files) as book:
            apply(book, SisaTarget(sisa_folder), owned_data)

    file_request(0)
    killed, duration = _kill_after(_fork(run_apply), None)
    assert not killed
    kills = interrupted = 0
    scale = duration  # as in test_kill9: the delay's scale follows the machine's load (about half killed)
    for round_ in range(1, ROUNDS + 1):
        file_request(round_)
        killed, _ = _kill_after(_fork(run_apply), float(rng.uniform(0.0, 2.0 * scale)))
        scale *= 1.1 if killed else 0.9
        kills += killed
        with open_ledger() as book:
            requests = {r.request_id: r for r in book.requests()}
            certificates = {rid: json.loads(body) for rid, body in book.certificates().items()}
        assert set(requests) == set(filed), "a filed request is missing"
        assert not [r for r in requests.values() if r.status == FAILED]
        applied = {rid for rid, r in requests.items() if r.status in (APPLIED, VERIFIED)}
        scheduled = {rid for rid, r in requests.items() if r.status == SCHEDULED}
        interrupted += bool(scheduled)
        assert set(certificates) == applied, "applied exactly when the certificate is stored"
        removed = [i for cert in certificates.values() for i in cert["removed_by_this_batch"]]
        assert len(removed) == len(set(removed)), "an id was removed by two batches (applied twice)"
        deleted = set(SISAEnsemble.load(sisa_folder).deleted_ids().tolist())
        applied_ids = set().union(*(filed[rid] for rid in applied))
        assert applied_ids <= deleted <= applied_ids | set().union(*(filed[rid] for rid in scheduled))
    print(f"one apply {duration:.3f} s; {kills}/{ROUNDS} killed, {interrupted} left a batch scheduled")
    assert kills >= ROUNDS // 4, f"only {kills} of {ROUNDS} applies were killed before they finished"

    with Ledger(pg_dsn, files=files) as book:  # the advisory lock died with the children: the rerun takes it
        apply(book, SisaTarget(sisa_folder), owned_data)
        assert book.counts()[APPLIED] == len(filed) and not book.due()
        for rid in filed:
            result = verify_certificate(files / "certificates" / f"{rid}.json", SisaTarget(sisa_folder), ledger=book)
            assert result.ok, (rid, result.checks)
        certificates = [json.loads(body) for body in book.certificates().values()]
    removed = [i for cert in certificates for i in cert["removed_by_this_batch"]]
    assert sorted(removed) == sorted(set().union(*filed.values()))  # each id removed exactly once


def test_kill_9_of_filing_on_postgres_loses_no_acknowledged_request_and_duplicates_none(pg_dsn, tmp_path):
    files, acks = tmp_path / "files", tmp_path / "acks.txt"
    with Ledger(pg_dsn, files=files, create=True):
        pass
    rng = np.random.default_rng(23)
    per_round = 400

    def file_many(round_: int):
        def work() -> None:
            with Ledger(pg_dsn, files=files) as book, open(acks, "a") as out:
                for i in range(per_round):
                    key = f"k-{round_}-{i}"
                    book.add(ob.ForgetRequest(ids=[round_ * 10_000 + i]), key=key)
                    out.write(key + "\n")  # acknowledged only after the commit returned
                    out.flush()

        return work

    kills = 0
    for round_ in range(ROUNDS):
        killed, _ = _kill_after(_fork(file_many(round_)), float(rng.uniform(0.05, 0.6)))
        kills += killed
    acknowledged = [line for line in acks.read_text().splitlines() if line]
    with Ledger(pg_dsn, files=files) as book:
        stored = {r.key: r for r in book.requests()}
        trail = book.history()
        lost = [k for k in acknowledged if k not in stored]
        received_rows: dict[str, int] = {}
        for t in trail:
            if t.to_status == RECEIVED:
                received_rows[t.request_id] = received_rows.get(t.request_id, 0) + 1
        again = book.add_many([ob.ForgetRequest(ids=list(r.ids)) for r in stored.values()], keys=list(stored))
    print(f"{kills}/{ROUNDS} filing runs killed; {len(acknowledged)} acknowledged, {len(stored)} stored")
    assert kills >= ROUNDS // 2, f"only {kills} of {ROUNDS} filing runs were killed mid-way"
    assert lost == [], f"{len(lost)} acknowledged filings lost"
    assert len(acknowledged) == len(set(acknowledged)) and len(stored) >= len(acknowledged)
    assert len(stored) - len(acknowledged) <= kills  # at most the one in flight per kill committed unacknowledged
    assert sorted(received_rows) == sorted(r.request_id for r in stored.values())
    assert set(received_rows.values()) == {1}, "a request with two audit rows of filing"
    assert not any(created for _, created in again), "filing an acknowledged key again made a new request"
