"""ForgetRequest: validation against the training data, owners, ids, deadlines, serialisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

import obliviate as ob
from obliviate.errors import (
    EmptyForgetSetError,
    ForgetAllError,
    InvalidInputError,
    UnknownIdsError,
    UnknownOwnerError,
)
from obliviate.request import DEFAULT_DEADLINE

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def owned():
    rng = np.random.default_rng(0)
    owners = ["ann"] * 3 + ["bob"] * 2 + ["cy"] * 5
    return ob.data.from_arrays(rng.normal(size=(10, 4)), np.arange(10) % 2, ids=np.arange(100, 110), owners=owners)


def test_ids_are_sorted_unique_ints_and_split_partitions(owned):
    r = ob.ForgetRequest(np.array([107, 101, 107, 103]), received=T0)
    assert r.ids == (101, 103, 107) and all(type(i) is int for i in r.ids)
    forget, retain = r.split(owned)
    assert list(forget.ids) == [101, 103, 107]
    assert len(retain) == 7 and not np.isin(retain.ids, forget.ids).any()
    assert np.array_equal(forget.X, owned.subset([101, 103, 107]).X)
    assert ob.ForgetRequest(104).ids == (104,)  # a single id


def test_unknown_ids_are_named_up_to_ten(owned):
    with pytest.raises(UnknownIdsError) as info:
        ob.ForgetRequest([100, *range(500, 512)]).resolve(owned)
    message = str(info.value)
    assert info.value.missing == list(range(500, 512))
    assert message.startswith("12 id(s) not in dataset 'data'")
    assert "[500, 501, 502, 503, 504, 505, 506, 507, 508, 509] (and 2 more)" in message
    assert "510" not in message and "Dataset.ids" in message


def test_empty_requests_are_refused(owned):
    with pytest.raises(EmptyForgetSetError, match="names no ids and no owners"):
        ob.ForgetRequest([])
    with pytest.raises(EmptyForgetSetError):
        ob.ForgetRequest(owners=[])


def test_forgetting_everything_is_refused(owned):
    with pytest.raises(ForgetAllError, match="all 10 training examples"):
        ob.ForgetRequest(owned.ids).split(owned)
    with pytest.raises(ForgetAllError):
        ob.ForgetRequest([100], owners=["bob", "cy", "ann"]).resolve(owned)
    assert len(ob.ForgetRequest(owned.ids[:-1]).resolve(owned)) == 9


def test_owners_resolve_and_combine_with_ids(owned):
    assert list(ob.ForgetRequest(owners="bob").resolve(owned)) == [103, 104]
    both = ob.ForgetRequest([100, 109], owners=["bob"]).resolve(owned)
    assert list(both) == [100, 103, 104, 109]
    with pytest.raises(UnknownOwnerError, match=r"\['dan'\]: check the spelling"):
        ob.ForgetRequest(owners=["ann", "dan"]).resolve(owned)
    with pytest.raises(UnknownOwnerError, match="records no owners"):
        ob.ForgetRequest(owners=["ann"]).resolve(ob.data.from_arrays(np.zeros((3, 2)), [0, 1, 0]))


def test_default_deadline_is_thirty_days():
    r = ob.ForgetRequest([1], received=T0)
    assert DEFAULT_DEADLINE == timedelta(days=30)
    assert r.deadline == datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
    assert ob.ForgetRequest([1], received=T0, deadline=timedelta(days=3)).deadline == T0 + timedelta(days=3)
    now = ob.ForgetRequest([1])
    assert now.received.tzinfo is not None and now.deadline - now.received == timedelta(days=30)


def test_deadline_and_receipt_validation():
    with pytest.raises(InvalidInputError, match="received must be timezone-aware"):
        ob.ForgetRequest([1], received=datetime(2025, 1, 1))
    with pytest.raises(InvalidInputError, match="deadline must be timezone-aware"):
        ob.ForgetRequest([1], received=T0, deadline=datetime(2025, 5, 1))
    with pytest.raises(InvalidInputError, match="before receipt"):
        ob.ForgetRequest([1], received=T0, deadline=T0 - timedelta(seconds=1))
    with pytest.raises(InvalidInputError, match="ids must be integers"):
        ob.ForgetRequest([1.5])
    with pytest.raises(InvalidInputError, match="string"):
        ob.ForgetRequest("17")


def test_overdue():
    r = ob.ForgetRequest([1], received=T0, deadline=timedelta(days=1))
    assert not r.overdue(T0 + timedelta(hours=23))
    assert not r.overdue(T0 + timedelta(days=1))
    assert r.overdue(T0 + timedelta(days=1, seconds=1))
    assert ob.ForgetRequest([1], received=datetime(2000, 1, 1, tzinfo=UTC)).overdue()
    assert not ob.ForgetRequest([1]).overdue()


def test_request_id_is_a_content_hash():
    a = ob.ForgetRequest([3, 1, 2], received=T0)
    b = ob.ForgetRequest(np.array([1, 2, 3, 3]), received=T0)
    assert a.request_id == b.request_id and a.request_id.startswith("req-") and a == b
    assert ob.ForgetRequest([1, 2], received=T0).request_id != a.request_id
    assert ob.ForgetRequest([1, 2, 3], owners=["ann"], received=T0).request_id != a.request_id
    assert ob.ForgetRequest([1, 2, 3], received=T0 + timedelta(seconds=1)).request_id != a.request_id
    assert ob.ForgetRequest([1], request_id="ticket-42").request_id == "ticket-42"
    assert hash(a) == hash(b)


def test_to_dict_from_dict_round_trip():
    tz = timezone(timedelta(hours=2))
    r = ob.ForgetRequest([5, 2], owners=["ann"], received=datetime(2025, 6, 1, 8, tzinfo=tz), note="art. 17")
    d = r.to_dict()
    assert d["ids"] == [2, 5] and d["owners"] == ["ann"] and d["note"] == "art. 17"
    back = ob.ForgetRequest.from_dict(d)
    assert back == r and back.to_dict() == d
    assert back.deadline == r.deadline and back.received.utcoffset() == timedelta(hours=2)
    owners_only = ob.ForgetRequest(owners="bob", received=T0)
    assert ob.ForgetRequest.from_dict(owners_only.to_dict()) == owners_only
    with pytest.raises(InvalidInputError, match="malformed date"):
        ob.ForgetRequest.from_dict({**d, "received": "yesterday"})


def test_requests_are_frozen():
    r = ob.ForgetRequest([1])
    with pytest.raises(AttributeError):
        r.ids = (2,)  # type: ignore[misc]
