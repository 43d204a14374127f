"""The ledger store: idempotent filing, validated lifecycle, audit trail, overdue, durability settings.

The behaviour tests run against both backends (``any_ledger``: SQLite and a throwaway PostgreSQL); the
tests of SQLite's files and pragmas against SQLite only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import obliviate as ob
from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.ledger import (
    APPLIED,
    FAILED,
    RECEIVED,
    SCHEDULED,
    VERIFIED,
    CorruptLedgerError,
    InvalidTransitionError,
    Ledger,
    UnknownRequestError,
)


def test_the_same_request_filed_twice_is_one_request(any_ledger):
    ledger = any_ledger  # each backend (SQLite, PostgreSQL)
    first, created = ledger.add(ob.ForgetRequest(owners=["alice", "bob"]))
    later = ob.ForgetRequest(owners=["bob", "alice"], received=datetime.now(UTC) + timedelta(hours=1))
    again, created_again = ledger.add(later)
    assert created and not created_again
    assert again.request_id == first.request_id and again.received == first.received
    assert len(ledger.requests()) == 1
    other, created_other = ledger.add(ob.ForgetRequest(owners="alice"))
    assert created_other and other.request_id != first.request_id


def test_a_user_key_makes_a_new_request_and_may_not_be_reused_for_other_content(any_ledger):
    ledger = any_ledger  # each backend (SQLite, PostgreSQL)
    a, _ = ledger.add(ob.ForgetRequest(owners="alice"))
    b, created = ledger.add(ob.ForgetRequest(owners="alice", note="new data since"), key="ticket-2")
    assert created and b.request_id != a.request_id
    same, created = ledger.add(ob.ForgetRequest(owners="alice"), key="ticket-2")
    assert not created and same.request_id == b.request_id
    with pytest.raises(InvalidInputError, match="ticket-2.*already used"):
        ledger.add(ob.ForgetRequest(owners="carol"), key="ticket-2")
    assert len(ledger.requests()) == 2


def test_the_lifecycle_is_validated_and_every_transition_audited(any_ledger):
    ledger = any_ledger  # each backend (SQLite, PostgreSQL)
    r, _ = ledger.add(ob.ForgetRequest(ids=[1, 2]))
    ledger.transition([r.request_id], SCHEDULED, batch_id="b1", resolved_ids={r.request_id: [1, 2]})
    with pytest.raises(InvalidInputError, match="one certificate per request"):
        ledger.transition([r.request_id], APPLIED)
    ledger.transition([r.request_id], APPLIED, certificates={r.request_id: "{}"})
    with pytest.raises(InvalidTransitionError, match="applied; it cannot become received"):
        ledger.transition([r.request_id], RECEIVED)
    with pytest.raises(InvalidTransitionError, match="cannot become scheduled"):
        ledger.transition([r.request_id], SCHEDULED)
    ledger.transition([r.request_id], VERIFIED)
    stored = ledger.get(r.request_id)
    assert stored.status == VERIFIED and stored.batch_id == "b1" and stored.resolved_ids == (1, 2)
    trail = ledger.history(r.request_id)
    assert [(t.from_status, t.to_status) for t in trail] == [
        (None, RECEIVED),
        (RECEIVED, SCHEDULED),
        (SCHEDULED, APPLIED),
        (APPLIED, VERIFIED),
    ]
    assert all(t.at.tzinfo is not None for t in trail) and [t.at for t in trail] == sorted(t.at for t in trail)
    assert ledger.certificate(r.request_id) == "{}"


def test_a_refused_transition_in_a_batch_changes_nothing(any_ledger):
    ledger = any_ledger  # each backend (SQLite, PostgreSQL)
    a, _ = ledger.add(ob.ForgetRequest(ids=[1]))
    b, _ = ledger.add(ob.ForgetRequest(ids=[2]))
    ledger.transition([b.request_id], FAILED, reason="unknown ids")
    with pytest.raises(InvalidTransitionError):
        ledger.transition([a.request_id, b.request_id], SCHEDULED, batch_id="b1")
    assert ledger.get(a.request_id).status == RECEIVED  # the whole transaction rolled back
    assert len(ledger.history(a.request_id)) == 1
    assert ledger.get(b.request_id).reason == "unknown ids"
    ledger.transition([b.request_id], RECEIVED)  # retry
    assert ledger.get(b.request_id).reason is None and ledger.get(b.request_id).status == RECEIVED
    with pytest.raises(UnknownRequestError, match="no request 'req-nope'"):
        ledger.transition(["req-nope"], SCHEDULED)


def test_overdue_counts_and_next_deadline(any_ledger):
    ledger = any_ledger  # each backend (SQLite, PostgreSQL)
    past = datetime.now(UTC) - timedelta(days=40)
    late, _ = ledger.add(ob.ForgetRequest(ids=[1], received=past))  # 30-day default deadline: 10 days ago
    soon, _ = ledger.add(ob.ForgetRequest(ids=[2], deadline=timedelta(days=1)))
    ledger.add(ob.ForgetRequest(ids=[3]))
    assert [r.request_id for r in ledger.requests(overdue=True)] == [late.request_id]
    assert ledger.next_deadline().request_id == late.request_id
    ledger.transition([late.request_id], SCHEDULED, batch_id="b")
    ledger.transition([late.request_id], APPLIED, certificates={late.request_id: "{}"})
    assert ledger.requests(overdue=True) == []  # applied late, no longer open
    assert ledger.next_deadline().request_id == soon.request_id
    assert ledger.counts() == {RECEIVED: 2, SCHEDULED: 0, APPLIED: 1, VERIFIED: 0, FAILED: 0}
    assert [r.request_id for r in ledger.requests(status=APPLIED)] == [late.request_id]
    with pytest.raises(InvalidInputError, match="unknown status 'done'"):
        ledger.requests(status="done")


def test_the_ledger_is_durable_wal_with_full_sync_and_survives_reopening(tmp_path):
    with Ledger(tmp_path / "l", create=True) as book:
        r, _ = book.add(ob.ForgetRequest(owners="alice"))
        assert book._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert book._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with Ledger(tmp_path / "l") as book:
        assert book.get(r.request_id).owners == ("alice",)


def test_a_corrupt_ledger_file_is_a_typed_error_with_the_fix(tmp_path):
    folder = tmp_path / "l"
    with Ledger(folder, create=True) as book:
        book.add(ob.ForgetRequest(owners="alice"))
        book._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray((folder / "ledger.sqlite").read_bytes())
    raw[:16] = b"garbage garbage!"
    (folder / "ledger.sqlite").write_bytes(bytes(raw))
    with pytest.raises(CorruptLedgerError, match="Restore it from a backup") as info:
        Ledger(folder)
    assert isinstance(info.value, CorruptCheckpointError)


def test_a_damaged_page_fails_the_integrity_check(tmp_path):
    folder = tmp_path / "l"
    with Ledger(folder, create=True) as book:
        book.add_many([ob.ForgetRequest(ids=[i]) for i in range(300)])
        book._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = book._db.execute("PRAGMA page_size").fetchone()[0]
    path = folder / "ledger.sqlite"
    raw = bytearray(path.read_bytes())
    for at in range(page * 2, len(raw), page):  # scribble over every page after the schema
        raw[at + 8 : at + 40] = b"\xff" * 32
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptLedgerError):
        with Ledger(folder) as book:
            book.requests()


def test_a_file_given_as_the_ledger_folder_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        Ledger(tmp_path / "f", create=True)


def test_add_many_files_in_one_transaction(any_ledger):
    ledger = any_ledger  # each backend (SQLite, PostgreSQL)
    stored = ledger.add_many([ob.ForgetRequest(ids=[i]) for i in range(50)])
    assert all(created for _, created in stored) and len(ledger.requests()) == 50
    with pytest.raises(InvalidInputError, match="ForgetRequest"):
        ledger.add_many([{"ids": [1]}])
