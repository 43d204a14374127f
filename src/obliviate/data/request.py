"""ForgetRequest: what to forget, by whom it was asked, and by when.

A request names example ids or owners (data subjects). It is resolved against the data the
model was trained on, and validated there: unknown ids or owners, an empty selection and a
selection that is the whole training set are typed errors. The default deadline is 30 days
after receipt: GDPR Art. 12(3) asks the controller to act on a request "without undue delay
and in any event within one month of receipt".

What a request holds is validated when it is made, because it later meets file names (its
certificate is ``<request_id>.json``) and terminals: ids are whole numbers in the int64 range (no
float rounding, no unsigned wrap-around, a flat list); owners and the note are printable text of
bounded length (no control characters or escape sequences); the request id is a short label of
letters, digits, ``.``, ``_`` and ``-`` (never a path).
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from obliviate.data.dataset import Dataset
from obliviate.errors import EmptyForgetSetError, ForgetAllError, InvalidInputError

__all__ = [
    "ForgetRequest",
    "DEFAULT_DEADLINE",
    "MAX_DEADLINE",
    "MAX_OWNER_CHARS",
    "MAX_NOTE_CHARS",
    "request_ids",
    "check_text",
    "check_request_id",
]

DEFAULT_DEADLINE = timedelta(days=30)
#: The furthest deadline a request may have after its receipt (a typo such as 10**9 days is refused).
MAX_DEADLINE = timedelta(days=36600)
MAX_OWNER_CHARS = 256
MAX_NOTE_CHARS = 1000
_INT64 = (-(2**63), 2**63 - 1)
_EXACT_FLOAT = 2**53  # beyond this a float no longer holds every whole number
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def request_ids(values: object, *, what: str = "ids") -> np.ndarray:
    """``values`` as a flat int64 array, refusing anything that would not survive the conversion exactly.

    Accepts integers, integer arrays and whole-valued floats below 2**53; refuses bools, text, nested
    or ragged lists, fractions, and values outside int64 (rather than rounding or wrapping them).
    """
    if values is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(values, str | bytes):
        raise InvalidInputError(f"{what} must be integers, got the string {values!r:.40}; pass a list of ids.")
    if isinstance(values, Mapping):
        raise InvalidInputError(f"{what} must be a list of integers, got a {type(values).__name__}.")
    if isinstance(values, np.ndarray):
        arr = values
    elif isinstance(values, numbers.Integral) and not isinstance(values, bool | np.bool_):
        arr = np.asarray([int(values)], dtype=object)
    else:
        try:
            items = list(values)  # type: ignore[call-overload]
        except TypeError as exc:
            raise InvalidInputError(f"{what} must be a list of integers, got {type(values).__name__}.") from exc
        bad = next((v for v in items if isinstance(v, list | tuple | dict | set | np.ndarray | str | bytes)), None)
        if bad is not None:
            raise InvalidInputError(f"{what} must be a flat list of integers; found {bad!r:.40} inside it.")
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
    if arr.ndim > 1:
        raise InvalidInputError(f"{what} must be a flat list of integers, got an array of shape {arr.shape}.")
    arr = arr.reshape(-1)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    kind = arr.dtype.kind
    if kind == "i":
        return arr.astype(np.int64)
    if kind == "u":
        if int(arr.max()) > _INT64[1]:
            raise InvalidInputError(f"{what} above {_INT64[1]} (the int64 maximum), e.g. {int(arr.max())}.")
        return arr.astype(np.int64)
    if kind == "f":
        arr = arr.astype(object)
    if arr.dtype.kind != "O":
        raise InvalidInputError(f"{what} must be integers, got dtype {arr.dtype}.")
    out = []
    for v in arr.tolist():
        if isinstance(v, bool | np.bool_):
            raise InvalidInputError(f"{what} must be integers, got the boolean {v!r}.")
        if isinstance(v, numbers.Integral):
            v = int(v)
        elif isinstance(v, numbers.Real) and float(v).is_integer() and abs(float(v)) <= _EXACT_FLOAT:
            v = int(v)
        else:
            raise InvalidInputError(
                f"{what} must be integers (whole-valued floats only below 2**53, where they are exact), got {v!r:.40}."
            )
        if not _INT64[0] <= v <= _INT64[1]:
            raise InvalidInputError(f"{what} must fit in int64 ({_INT64[0]}..{_INT64[1]}), got {v}.")
        out.append(v)
    return np.asarray(out, dtype=np.int64)


def check_text(value: object, what: str, *, limit: int, empty: bool = False) -> str:
    """``value`` if it is printable text of at most ``limit`` characters (no control characters,
    newlines or escape sequences; not blank unless ``empty``); otherwise :class:`InvalidInputError`."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text, got {type(value).__name__} {value!r:.40}.")
    if len(value) > limit:
        raise InvalidInputError(f"{what} is {len(value)} characters long; at most {limit} are kept.")
    if not empty and not value.strip():
        raise InvalidInputError(f"{what} is blank; give a name.")
    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None:
        raise InvalidInputError(
            f"{what} {ascii(value)[:60]} holds the control character {ascii(bad)}; use printable text only "
            "(no newlines, tabs or terminal escape sequences)."
        )
    return value


def check_request_id(request_id: object) -> str:
    """``request_id`` if it is a safe label (letters, digits, ``.``, ``_``, ``-``; at most 128; no ``..``)."""
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id) or ".." in request_id:
        raise InvalidInputError(
            f"request id {ascii(request_id)[:60]} is not a plain label; use letters, digits, '.', '_' and '-' "
            "(at most 128, no '..'), or omit it for the default req-<hash>."
        )
    return request_id


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
        id_tuple = tuple(sorted(set(request_ids(ids).tolist())))
        if isinstance(owners, str | numbers.Integral):
            owners = [owners]
        if owners is not None and not isinstance(owners, Iterable) or isinstance(owners, bytes | Mapping):
            raise InvalidInputError(f"owners must be a name or a list of names, got {type(owners).__name__}.")
        owner_tuple = tuple(
            sorted(set(check_text(o, "owner", limit=MAX_OWNER_CHARS) for o in (owners if owners is not None else ())))
        )
        note = check_text(note if note is not None else "", "note", limit=MAX_NOTE_CHARS, empty=True)
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
            deadline = DEFAULT_DEADLINE
        if isinstance(deadline, timedelta):
            if deadline > MAX_DEADLINE:
                raise InvalidInputError(
                    f"a deadline {deadline.days} days after receipt is beyond the {MAX_DEADLINE.days}-day limit; "
                    "GDPR asks for one month (the default)."
                )
            try:
                deadline = received + deadline
            except OverflowError as exc:
                raise InvalidInputError(f"deadline {deadline} after {received.isoformat()} is past year 9999.") from exc
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
        object.__setattr__(self, "request_id", check_request_id(request_id))

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
            raise InvalidInputError(
                f"request record has a malformed date ({exc}); use ISO 8601 with a timezone."
            ) from exc
        return cls(
            d.get("ids") or None,
            owners=d.get("owners") or None,
            request_id=d.get("request_id"),
            received=received,
            deadline=deadline,
            note=d.get("note", ""),
        )
