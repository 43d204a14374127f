"""kill -9 at random points of ``apply``, 200 times: the ledger and the checkpoints stay consistent.

Design. The parent (this pytest process, torch already imported) owns a copy of a tiny SISA ensemble (360
digits examples, 3 shards of 2 slices, a 16-unit MLP trained 2 epochs: one apply retrains a shard or
two in tens of milliseconds) and a ledger. Each round it files a new request (one id; at two rounds
a whole owner), then ``os.fork()``s a child that runs one ``apply`` over every due request and exits.
The parent sleeps a delay drawn from a seeded RNG, uniform over 2x a scale that starts at the duration of an
uninterrupted one-batch apply (measured in round 0; an apply that first finishes an interrupted
batch runs two batches and takes about twice as long) and follows the machine's load (x1.05 after a kill,
x0.95 after a finished child, so about half the children are killed however busy the machine is), and sends SIGKILL, so kills land before the lock, while
scheduling, during retraining and the checkpoint writes, between the SISA commit and the ledger's
applied transaction, while certificate files are written, or after a clean exit. Then it checks, on
the files alone (a fresh Ledger and SISAEnsemble.load):

- no request lost: every filed request is in the ledger, none failed;
- none applied twice: the stored certificates are exactly the applied requests; the ids each
  certificate says its batch removed are disjoint across certificates; the ensemble's deleted ids lie
  between the applied requests' ids and those plus the scheduled (interrupted) requests' ids;
- every stored certificate's signature verifies under the ledger's key, and none of its removed ids
  is in a current manifest; certificate files exist only for applied requests; no checkpoint is damaged.

A final uninterrupted apply finishes the work: every request is applied, every certificate verifies
fully (signature, data, the model hash through the chain of later batches, ids gone), one file per
applied request, and the ensemble has deleted exactly the union of the requests' ids, each once.
The test also asserts that kills really interrupted applies mid-way (scheduled batches were left
behind and later resumed), so it cannot pass by killing only idle children.

The files live on /dev/shm where there is one: a killed process loses nothing the kernel's page cache
already holds, so fsync plays no part in surviving kill -9 (it guards against power loss, which no
test here can cut), and without its disk waits the 200 rounds take a third of the time.
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
    SCHEDULED,
    VERIFIED,
    Ledger,
    SisaTarget,
    apply,
    check_signature,
    load_public_key,
    verify_certificate,
)
from obliviate.ledger.keys import public_key_path

ROUNDS = 200
OWNER_ROUNDS = {50: "writer-004", 150: "writer-009"}


def _fork_apply(ledger_folder, sisa_folder, data) -> int:
    """Fork a child that runs one apply and exits (0 on success); returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            import torch

            torch.set_num_threads(1)  # the parent's OpenMP pool does not survive fork: a child using it can deadlock
            with Ledger(ledger_folder) as book:
                apply(book, SisaTarget(sisa_folder), data)
            code = 0
        except BaseException:  # noqa: BLE001 - report anything, then leave without running pytest's exit code
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _run_round(ledger_folder, sisa_folder, data, delay: float | None) -> tuple[bool, float]:
    """One child apply, SIGKILLed after ``delay`` seconds (None: wait for it); ``(killed, seconds)``."""
    started = time.perf_counter()
    pid = _fork_apply(ledger_folder, sisa_folder, data)
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
    seconds = time.perf_counter() - started
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert killed or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0), f"the apply failed (status {status})"
    return killed, seconds


def _check_invariants(ledger_folder, sisa_folder, filed: dict[str, set[int]], seen: dict[str, str]) -> int:
    """The consistency checks of the module docstring; returns the number of scheduled requests.

    ``seen`` holds the certificates checked in earlier rounds: a stored certificate never changes,
    so only new ones need their signature checked."""
    with Ledger(ledger_folder) as book:
        requests = {r.request_id: r for r in book.requests()}
        bodies = book.certificates()
    assert all(bodies.get(rid) == body for rid, body in seen.items()), "a stored certificate changed"
    certificates = {rid: json.loads(body) for rid, body in bodies.items()}
    assert set(requests) == set(filed), "a filed request is missing from the ledger"
    assert not [r for r in requests.values() if r.status == FAILED], "a crash must not fail a request"
    applied = {rid for rid, r in requests.items() if r.status in (APPLIED, VERIFIED)}
    scheduled = {rid for rid, r in requests.items() if r.status == SCHEDULED}
    assert set(certificates) == applied, "applied exactly when the certificate is stored"
    files = {p.stem for p in (ledger_folder / "certificates").glob("*.json")} if applied else set()
    assert files <= applied, "a certificate file for a request that is not applied"
    ens = SISAEnsemble.load(sisa_folder)
    assert ens.damaged() == {}, ens.damaged()
    deleted = set(ens.deleted_ids().tolist())
    applied_ids = set().union(*(filed[rid] for rid in applied))
    pending_ids = set().union(*(filed[rid] for rid in scheduled))
    assert applied_ids <= deleted <= applied_ids | pending_ids
    removed = [i for cert in certificates.values() for i in cert["removed_by_this_batch"]]
    assert len(removed) == len(set(removed)), "an id was removed by two batches"
    trusted = load_public_key(public_key_path(ledger_folder)) if applied else None
    present = set(ens.manifest_ids().tolist())
    for rid, cert in certificates.items():
        if rid not in seen:
            assert check_signature(cert, trusted=trusted)[0]
        assert not present & set(cert["removed_ids"])
    seen.update(bodies)
    return len(scheduled)


def test_kill_9_at_random_points_of_apply_leaves_ledger_and_checkpoints_consistent(crash_folder, owned_data):
    ledger_folder, sisa_folder = crash_folder / "ledger", crash_folder / "ensemble"
    rng = np.random.default_rng(2024)
    owned = {name: set(owned_data.ids_of_owners([name]).tolist()) for name in OWNER_ROUNDS.values()}
    pool = [int(i) for i in rng.permutation(owned_data.ids) if int(i) not in set().union(*owned.values())]
    filed: dict[str, set[int]] = {}

    def file_request(round_: int) -> None:
        with Ledger(ledger_folder, create=True) as book:
            if round_ in OWNER_ROUNDS:
                stored, _ = book.add(ob.ForgetRequest(owners=OWNER_ROUNDS[round_]))
                filed[stored.request_id] = owned[OWNER_ROUNDS[round_]]
            stored, _ = book.add(ob.ForgetRequest(ids=[pool[round_]]))
            filed[stored.request_id] = {pool[round_]}

    file_request(0)
    killed, duration = _run_round(ledger_folder, sisa_folder, owned_data, delay=None)  # measure one whole apply
    assert not killed
    kills = interrupted = 0
    seen: dict[str, str] = {}
    scale = duration  # delays are uniform on [0, 2 scale]; scale follows the machine's load (see below)
    for round_ in range(1, ROUNDS + 1):
        file_request(round_)
        killed, _ = _run_round(ledger_folder, sisa_folder, owned_data, delay=float(rng.uniform(0.0, 2.0 * scale)))
        # a busy or idle machine changes how long an apply takes: nudge the scale so about half the children are
        # killed (a killed child means the delay was short for this load: lengthen; a finished one: shorten)
        scale *= 1.05 if killed else 0.95
        kills += killed
        interrupted += _check_invariants(ledger_folder, sisa_folder, filed, seen) > 0
    print(f"one apply {duration:.3f} s; {kills}/{ROUNDS} children killed, {interrupted} left a batch scheduled")
    assert kills >= ROUNDS // 4, f"only {kills} of {ROUNDS} children were killed before they finished"
    assert interrupted >= 5, f"only {interrupted} kills left a batch scheduled mid-way; the test must hit apply mid-way"

    with Ledger(ledger_folder) as book:  # the rerun finishes the work
        apply(book, SisaTarget(sisa_folder), owned_data)
        assert book.counts()[APPLIED] == len(filed) and not book.due()
        for rid in filed:
            result = verify_certificate(
                ledger_folder / "certificates" / f"{rid}.json", SisaTarget(sisa_folder), ledger=book
            )
            assert result.ok, (rid, result.checks)
        assert book.counts()[VERIFIED] == len(filed)
        certificates = [json.loads(body) for body in book.certificates().values()]
    assert {p.stem for p in (ledger_folder / "certificates").glob("*.json")} == set(filed)
    wanted = set().union(*filed.values())
    removed = [i for cert in certificates for i in cert["removed_by_this_batch"]]
    assert sorted(removed) == sorted(wanted)  # each id removed exactly once
    assert set(SISAEnsemble.load(sisa_folder).deleted_ids().tolist()) == wanted
