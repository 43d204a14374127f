"""Periodic retraining as a deadline policy: ``retrain-every`` a period and/or a pending-request count.

The seed's socio-technical answer to deletion requests is to collect them and retrain within the
deadline. A :class:`RetrainPolicy` makes that a checked promise. Retrains run at the fixed slots
``start + k * period`` (k = 1, 2, ...) and, with ``pending=N``, as soon as N requests are open
(received or scheduled); a retrain takes ``duration`` before its requests count as applied. When
a request is filed, the ledger computes the latest time the policy guarantees to apply it,

* ``now + duration`` if filing it brings the open count to N (the count trigger fires now),
* else ``next slot after now + duration`` if there is a period,
* else no guarantee (a count-only policy promises nothing to a request that does not reach N),

and refuses the request with :class:`DeadlineUnmeetableError`, naming that earliest date, when its
deadline is earlier; nothing is filed then. The policy lives in the ledger's settings (``meta``),
set and cleared through :meth:`Ledger.set_meta` so each change is in the ledger's audit trail. It
is a schedule for whoever runs ``obliviate apply`` (a cron job at the slots): ``obliviate status``
shows the next scheduled retrain and whether the count trigger is due.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from obliviate.errors import InvalidInputError

__all__ = ["META_KEY", "DeadlineUnmeetableError", "RetrainPolicy", "clear_policy", "get_policy", "set_policy"]

META_KEY = "retrain_policy"


class DeadlineUnmeetableError(InvalidInputError):
    """A request's deadline is earlier than the retrain policy can guarantee to apply it."""

    def __init__(self, deadline: datetime, earliest: datetime | None, policy: RetrainPolicy) -> None:
        self.deadline, self.earliest = deadline, earliest
        if earliest is None:
            fix = (
                f"the policy ({policy.describe()}) has no period, so only its pending count guarantees a retrain and this "
                "request does not reach it: add a period (`obliviate ledger policy --every-days D`)"
            )
        else:
            days = math.ceil((earliest - datetime.now(UTC)).total_seconds() / 86400)
            fix = (
                f"the policy ({policy.describe()}) applies it by {earliest:%Y-%m-%d %H:%M} UTC at the earliest: give a "
                f"deadline on or after that (--deadline-days {max(days, 0)} or more) or shorten the period"
            )
        super().__init__(
            f"refused: the deadline {deadline:%Y-%m-%d %H:%M} UTC cannot be met; {fix}. Nothing was filed."
        )


@dataclass(frozen=True)
class RetrainPolicy:
    """Retrain at ``start + k * period`` and/or when ``pending`` requests are open; a retrain takes ``duration``."""

    period: timedelta | None = None
    pending: int | None = None
    start: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    duration: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.period is None and self.pending is None:
            raise InvalidInputError("a retrain policy needs a period, a pending count or both.")
        if self.period is not None and self.period <= timedelta(0):
            raise InvalidInputError(f"the retrain period must be positive, got {self.period}.")
        if self.pending is not None and (
            isinstance(self.pending, bool) or not isinstance(self.pending, int) or self.pending < 1
        ):
            raise InvalidInputError(f"the pending count must be a whole number >= 1, got {self.pending!r}.")
        if self.duration < timedelta(0):
            raise InvalidInputError(f"the retrain duration must be >= 0, got {self.duration}.")
        if self.start.tzinfo is None:
            raise InvalidInputError("the policy's start must be timezone-aware (UTC).")

    def next_slot(self, now: datetime) -> datetime | None:
        """The first periodic retrain strictly after ``now`` (None without a period)."""
        if self.period is None:
            return None
        k = max(math.floor((now - self.start) / self.period) + 1, 1)
        return self.start + k * self.period

    def guaranteed_by(self, now: datetime, open_after: int) -> datetime | None:
        """When a request filed at ``now`` is applied at the latest, with ``open_after`` requests then open."""
        if self.pending is not None and open_after >= self.pending:
            return now + self.duration
        slot = self.next_slot(now)
        return None if slot is None else slot + self.duration

    def count_due(self, open_now: int) -> bool:
        """The pending-count trigger has fired: a retrain is due now."""
        return self.pending is not None and open_now >= self.pending

    def describe(self) -> str:
        parts = []
        if self.period is not None:
            parts.append(f"every {_span(self.period)} from {self.start:%Y-%m-%d %H:%M} UTC")
        if self.pending is not None:
            parts.append(f"when {self.pending} request(s) are open")
        text = "retrain " + " or ".join(parts)
        return text + (f", taking {_span(self.duration)}" if self.duration else "")

    def to_json(self) -> str:
        return json.dumps(
            {
                "period_s": None if self.period is None else self.period.total_seconds(),
                "pending": self.pending,
                "start": self.start.astimezone(UTC).isoformat(),
                "duration_s": self.duration.total_seconds(),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RetrainPolicy:
        try:
            raw = json.loads(text)
            return cls(
                period=None if raw["period_s"] is None else timedelta(seconds=float(raw["period_s"])),
                pending=raw["pending"],
                start=datetime.fromisoformat(raw["start"]),
                duration=timedelta(seconds=float(raw["duration_s"])),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"the ledger's retrain policy setting is damaged ({exc}); set it again with `obliviate ledger policy`."
            ) from exc


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{seconds:g} s"


def get_policy(ledger) -> RetrainPolicy | None:
    """The ledger's retrain policy, or None when it has none."""
    text = ledger.get_meta(META_KEY)
    return None if not text else RetrainPolicy.from_json(text)


def set_policy(ledger, policy: RetrainPolicy) -> None:
    """Store ``policy`` (recorded in the ledger's audit trail). Requests already filed are not re-checked."""
    if not isinstance(policy, RetrainPolicy):
        raise InvalidInputError(f"set_policy takes a RetrainPolicy, got {type(policy).__name__}.")
    ledger.set_meta(META_KEY, policy.to_json(), event="retrain_policy_set", detail=policy.describe())


def clear_policy(ledger) -> None:
    """Remove the retrain policy (recorded in the audit trail): requests are then filed unchecked."""
    ledger.set_meta(META_KEY, "", event="retrain_policy_cleared")
