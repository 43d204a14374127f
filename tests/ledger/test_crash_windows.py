"""kill -9 of ``apply`` exactly in its narrow windows, then a rerun: no request lost, no id deleted twice.

Where ``test_kill9.py`` kills at random times, this test stops a forked ``apply`` deterministically
with the test hook :func:`obliviate.ledger.apply.crash_point` (``OBLIVIATE_CRASH_AT=<point>``, which
SIGKILLs the process there): mid-retrain (after the first new slice checkpoint is written, before the
SISA state commits), after the scheduling transaction, after the SISA commit, after the ledger's
applied transaction but before any certificate file, and after the first of two certificate files;
and a chain of three kills in a row. After each kill the state must be exactly the one of that
window (and pass ``test_kill9``'s invariants); after an uninterrupted rerun every request is
applied once, every certificate verifies and has its file, and each id was removed exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback

import pytest
import torch
from test_kill9 import _check_invariants

import obliviate as ob
from obliviate.exact import SISAEnsemble
from obliviate.ledger import APPLIED, SCHEDULED, VERIFIED, Ledger, SisaTarget, apply, verify_certificate
from obliviate.ledger.apply import CRASH_ENV, CRASH_POINTS, crash_point

OWNER = "writer-004"
CHILD_TIMEOUT = 120.0


def _apply_killed_at(point: str, ledger_folder, sisa_folder, data) -> None:
    """Fork a child that runs ``apply`` with ``OBLIVIATE_CRASH_AT=point``; assert it died by SIGKILL there."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 3
        try:
            # one intra-op thread: the parent's OpenMP pool did not survive the fork, and waiting on it deadlocks
            torch.set_num_threads(1)
            os.environ[CRASH_ENV] = point
            target = SisaTarget(sisa_folder)
            if point == "retrain":  # the deletion's retraining lives in the ensemble: stop after its first slice
                write_slice = target.ensemble._write_slice

                def write_then_crash(*args, **kwargs):
                    record = write_slice(*args, **kwargs)
                    crash_point("retrain")
                    return record

                target.ensemble._write_slice = write_then_crash
            with Ledger(ledger_folder) as book:
                apply(book, target, data)
            code = 0  # finished without reaching the point: the parent fails the test
        except BaseException:  # noqa: BLE001 - report anything, then leave without running pytest's exit code
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:  # never hang the suite: kill the child and fail
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"apply at {point!r} did not finish or die within {CHILD_TIMEOUT} s")
        time.sleep(0.005)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"apply was not killed at {point!r} (exit status {status})"
    )


def _window_state(ledger_folder, sisa_folder) -> tuple[set[str], set[int], set[str]]:
    """(statuses of the requests, ids the ensemble has deleted, certificate files present)."""
    with Ledger(ledger_folder) as book:
        statuses = {r.status for r in book.requests()}
    deleted = set(SISAEnsemble.load(sisa_folder).deleted_ids().tolist())
    files = {p.stem for p in (ledger_folder / "certificates").glob("*.json")}
    return statuses, deleted, files


@pytest.mark.parametrize(
    "points",
    [
        ("retrain",),
        ("scheduled",),
        ("deleted",),
        ("ledger-committed",),
        ("certificate-written",),
        ("retrain", "deleted", "ledger-committed"),  # three kills in a row, each in the rerun of the last
    ],
    ids=lambda points: "+".join(points),
)
def test_a_kill_in_each_narrow_window_is_finished_by_the_rerun_without_loss_or_double_deletion(
    crash_folder, owned_data, points
):
    assert set(points) <= set(CRASH_POINTS)
    ledger_folder, sisa_folder = crash_folder / "ledger", crash_folder / "ensemble"
    owned = set(owned_data.ids_of_owners([OWNER]).tolist())
    loose = [int(i) for i in owned_data.ids if int(i) not in owned][:3]
    filed: dict[str, set[int]] = {}
    with Ledger(ledger_folder, create=True) as book:
        by_owner, _ = book.add(ob.ForgetRequest(owners=OWNER))
        by_ids, _ = book.add(ob.ForgetRequest(ids=loose))
    filed = {by_owner.request_id: owned, by_ids.request_id: set(loose)}
    wanted = owned | set(loose)

    for point in points:
        _apply_killed_at(point, ledger_folder, sisa_folder, owned_data)
        statuses, deleted, files = _window_state(ledger_folder, sisa_folder)
        expected = {
            "retrain": ({SCHEDULED}, set(), 0),  # checkpoints written, the SISA state not committed
            "scheduled": ({SCHEDULED}, set(), 0),
            "deleted": ({SCHEDULED}, wanted, 0),  # SISA committed, the ledger not yet
            "ledger-committed": ({APPLIED}, wanted, 0),  # certificates in the ledger, no file yet
            "certificate-written": ({APPLIED}, wanted, 1),
        }[point]
        assert (statuses, deleted, len(files)) == expected, point
        assert _check_invariants(ledger_folder, sisa_folder, filed, {}) == (2 if SCHEDULED in statuses else 0)

    with Ledger(ledger_folder) as book:  # the uninterrupted rerun
        apply(book, SisaTarget(sisa_folder), owned_data)
        assert book.counts()[APPLIED] == 2 and not book.due() and not book.pending_batches()
        for rid in filed:
            result = verify_certificate(
                ledger_folder / "certificates" / f"{rid}.json", SisaTarget(sisa_folder), ledger=book
            )
            assert result.ok, (rid, result.checks)
        assert book.counts()[VERIFIED] == 2
        certificates = {rid: json.loads(body) for rid, body in book.certificates().items()}
    assert {p.stem for p in (ledger_folder / "certificates").glob("*.json")} == set(filed)
    assert not list((ledger_folder / "certificates").glob(".*.tmp"))  # cut-short writes cleaned up
    removed = [i for cert in certificates.values() for i in cert["removed_by_this_batch"]]
    assert sorted(removed) == sorted(wanted)  # each id removed exactly once
    assert {rid: set(cert["removed_ids"]) for rid, cert in certificates.items()} == filed
    assert len({cert["batch_id"] for cert in certificates.values()}) == 1  # one batch, resumed, never redone
    ensemble = SISAEnsemble.load(sisa_folder)
    assert set(ensemble.deleted_ids().tolist()) == wanted and not ensemble.damaged()
    assert not wanted & set(ensemble.manifest_ids().tolist())
