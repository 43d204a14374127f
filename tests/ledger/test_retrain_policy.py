"""Periodic retraining policy: slots, the deadline check at filing time, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import obliviate as ob
from obliviate.errors import InvalidInputError
from obliviate.ledger.policy import DeadlineUnmeetableError, RetrainPolicy, clear_policy, get_policy, set_policy
from obliviate.ledger.store import utc_now

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_slots_and_guarantees():
    policy = RetrainPolicy(period=timedelta(days=7), pending=3, start=T0, duration=timedelta(hours=2))
    assert policy.next_slot(T0) == T0 + timedelta(days=7)
    assert policy.next_slot(T0 + timedelta(days=7)) == T0 + timedelta(days=14)  # strictly after
    assert policy.next_slot(T0 - timedelta(days=30)) == T0 + timedelta(days=7)  # slots start after start
    now = T0 + timedelta(days=8)
    assert policy.guaranteed_by(now, open_after=2) == T0 + timedelta(days=14, hours=2)
    assert policy.guaranteed_by(now, open_after=3) == now + timedelta(hours=2)  # the count trigger fires
    assert RetrainPolicy(pending=3, start=T0).guaranteed_by(now, 2) is None
    assert RetrainPolicy.from_json(policy.to_json()) == policy
    with pytest.raises(InvalidInputError, match="period, a pending count"):
        RetrainPolicy()
    with pytest.raises(InvalidInputError, match="positive"):
        RetrainPolicy(period=timedelta(0))


def test_filing_refuses_an_unmeetable_deadline_with_the_earliest_date_and_files_nothing(ledger):
    start = utc_now()
    set_policy(ledger, RetrainPolicy(period=timedelta(days=7), start=start))
    with pytest.raises(DeadlineUnmeetableError, match="cannot be met") as info:
        ledger.add(ob.ForgetRequest(owners="alice", deadline=timedelta(days=3)))
    assert info.value.earliest == start + timedelta(days=7)
    assert f"{start + timedelta(days=7):%Y-%m-%d %H:%M}" in str(info.value)
    assert sum(ledger.counts().values()) == 0
    with pytest.raises(DeadlineUnmeetableError):  # one bad request refuses the whole batch
        ledger.add_many(
            [
                ob.ForgetRequest(owners="bob", deadline=timedelta(days=30)),
                ob.ForgetRequest(owners="carol", deadline=timedelta(days=1)),
            ]
        )
    assert sum(ledger.counts().values()) == 0
    stored, created = ledger.add(ob.ForgetRequest(owners="alice", deadline=timedelta(days=8)))
    assert created and stored.status == "received"
    again, created = ledger.add(ob.ForgetRequest(owners="alice", deadline=timedelta(days=8)))
    assert not created  # an idempotent re-filing is not re-checked
    clear_policy(ledger)
    assert get_policy(ledger) is None
    ledger.add(ob.ForgetRequest(owners="dave", deadline=timedelta(days=1)))
    kinds = [kind for _, _, kind, _ in ledger.events()]
    assert kinds[-2:] == ["retrain_policy_set", "retrain_policy_cleared"]


def test_count_trigger_guarantees_only_the_request_that_reaches_it(ledger):
    set_policy(ledger, RetrainPolicy(pending=2, start=utc_now(), duration=timedelta(hours=1)))
    with pytest.raises(DeadlineUnmeetableError, match="no period"):
        ledger.add(ob.ForgetRequest(owners="alice", deadline=timedelta(days=20)))
    set_policy(
        ledger, RetrainPolicy(period=timedelta(days=30), pending=2, start=utc_now(), duration=timedelta(hours=1))
    )
    ledger.add(ob.ForgetRequest(owners="alice", deadline=timedelta(days=31)))
    with pytest.raises(DeadlineUnmeetableError):
        ledger.add(ob.ForgetRequest(owners="bob", deadline=timedelta(minutes=30)))  # shorter than the retrain itself
    stored, _ = ledger.add(ob.ForgetRequest(owners="bob", deadline=timedelta(days=1)))  # the 2nd open request: now
    assert stored.status == "received"


def test_cli_policy_status_and_refusal(cli):
    assert cli("ledger", "init").returncode == 0
    shown = cli("ledger", "policy")
    assert "no retrain policy" in shown.stdout
    done = cli("ledger", "policy", "--every-days", "7", "--pending", "50", "--duration-hours", "2")
    assert done.returncode == 0 and "every 7 days" in done.stdout and "when 50 request(s)" in done.stdout
    status = cli("status")
    assert "next scheduled retrain:" in status.stdout and "retrain policy: retrain every 7 days" in status.stdout
    refused = cli("request", "add", "--owner", "alice", "--deadline-days", "3")
    assert refused.returncode == 2 and "cannot be met" in refused.stderr and "--deadline-days 8" in refused.stderr
    assert cli("request", "add", "--owner", "alice", "--deadline-days", "8").returncode == 0
    assert cli("ledger", "policy", "--clear", "--pending", "3").returncode == 2
    assert "cleared" in cli("ledger", "policy", "--clear").stdout
    assert "retrain policy: none" in cli("status").stdout
