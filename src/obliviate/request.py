"""ForgetRequest: what to forget, by whom it was asked, and by when.

A request names example ids or owners (data subjects). It is resolved against the data the
model was trained on, and validated there: unknown ids or owners, an empty selection and a
selection that is the whole training set are typed errors. The default deadline is 30 days
after receipt: GDPR Art. 12(3) asks the controller to act on a request "without undue delay
and in any event within one month of receipt".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from obliviate.data.dataset import Dataset, _as_id_array
from obliviate.errors import EmptyForgetSetError, ForgetAllError, InvalidInputError

__all__ = ["ForgetRequest", "DEFAULT_DEADLINE"]

DEFAULT_DEADLINE = timedelta(days=30)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class ForgetRequest:
    """A deletion request: ``ids`` and/or ``owners``, with an id, a receipt time and a deadline.

    ``request_id`` defaults to a content hash of what is asked and when, so filing the same
    request twice gives the same id.
    """

    ids: tuple[int, ...] = ()
    owners: tuple[str, ...] = ()
    request_id: str = ""
    received: datetime = field(default_factory=_now)
    deadline: datetime | None = None
    note: str = ""

    def __init__(
        self,
        ids: Iterable[int] | np.ndarray | None = None,
        *,
        owners: Iterable[str] | str | None = None,
        request_id: str | None = None,
        received: datetime | None = None,
        deadline: datetime | timedelta | None = None,
        note: str = "",
    ) -> None:
        id_tuple = tuple(sorted(set(int(i) for i in _as_id_array(ids if ids is not None else []))))
        if isinstance(owners, str):
            owners = [owners]
        owner_tuple = tuple(sorted(set(str(o) for o in (owners or ()))))
        if not id_tuple and not owner_tuple:
            raise EmptyForgetSetError("the request names no ids and no owners")
        received = received or _now()
        if not isinstance(received, datetime):
            raise InvalidInputError(f"received must be a datetime, got {type(received).__name__}.")
        if deadline is not None and not isinstance(deadline, datetime | timedelta):
            raise InvalidInputError(
                f"deadline must be a timezone-aware datetime or a timedelta after receipt, got {deadline!r}; "
                "e.g. datetime.fromisoformat('2030-01-01T00:00:00+00:00') or timedelta(days=30)."
            )
        if received.tzinfo is None:
            raise InvalidInputError("received must be timezone-aware, e.g. datetime.now(UTC).")
        if deadline is None:
            deadline = received + DEFAULT_DEADLINE
        elif isinstance(deadline, timedelta):
            deadline = received + deadline
        if deadline.tzinfo is None:
            raise InvalidInputError("deadline must be timezone-aware, e.g. datetime(2026, 1, 1, tzinfo=UTC).")
        if deadline < received:
            raise InvalidInputError(f"deadline {deadline.isoformat()} is before receipt {received.isoformat()}.")
        object.__setattr__(self, "ids", id_tuple)
        object.__setattr__(self, "owners", owner_tuple)
        object.__setattr__(self, "received", received)
        object.__setattr__(self, "deadline", deadline)
        object.__setattr__(self, "note", note)
        if request_id is None:
            digest = hashlib.sha256(
                json.dumps({"ids": id_tuple, "owners": owner_tuple, "received": received.isoformat()}).encode()
            ).hexdigest()
            request_id = f"req-{digest[:16]}"
        object.__setattr__(self, "request_id", request_id)

    def __repr__(self) -> str:
        what = []
        if self.ids:
            what.append(f"{len(self.ids)} ids")
        if self.owners:
            what.append(f"owners={list(self.owners)[:5]}")
        return f"ForgetRequest({self.request_id}, {', '.join(what)}, deadline={self.deadline:%Y-%m-%d})"

    def overdue(self, now: datetime | None = None) -> bool:
        return (now or _now()) > self.deadline

    def resolve(self, data: Dataset) -> np.ndarray:
        """The sorted ids to forget in ``data``; validates and raises the typed errors."""
        parts = []
        if self.ids:
            ids = np.asarray(self.ids, dtype=np.int64)
            data.positions(ids)  # raises UnknownIdsError naming up to ten missing ids
            parts.append(ids)
        if self.owners:
            owned = data.ids_of_owners(self.owners)
            if owned.size == 0:
                raise EmptyForgetSetError(f"owners {list(self.owners)} own no example in {data.name!r}")
            parts.append(owned)
        forget = np.unique(np.concatenate(parts))
        if forget.size == 0:
            raise EmptyForgetSetError()
        if forget.size >= len(data):
            raise ForgetAllError(len(data))
        return forget

    def split(self, data: Dataset) -> tuple[Dataset, Dataset]:
        """``(forget, retain)`` subsets of ``data`` for this request."""
        forget_ids = self.resolve(data)
        return data.subset(forget_ids, name=f"{data.name}/forget"), data.without(forget_ids, name=f"{data.name}/retain")

    def to_dict(self) -> dict:
        return {
            "request_id": self.request_id,
            "ids": list(self.ids),
            "owners": list(self.owners),
            "received": self.received.isoformat(),
            "deadline": self.deadline.isoformat(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ForgetRequest:
        """The inverse of :meth:`to_dict`; malformed records raise :class:`InvalidInputError`."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"a request record must be a dict, got {type(d).__name__}.")
        try:
            received = datetime.fromisoformat(d["received"]) if d.get("received") else None
            deadline = datetime.fromisoformat(d["deadline"]) if d.get("deadline") else None
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"request record has a malformed date ({exc}); use ISO 8601 with a timezone.") from exc
        return cls(
            d.get("ids") or None,
            owners=d.get("owners") or None,
            request_id=d.get("request_id"),
            received=received,
            deadline=deadline,
            note=d.get("note", ""),
        )
