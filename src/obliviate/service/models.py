"""The bodies the API accepts: strict (no type coercion: ``"7"`` is not an id, ``true`` is not a number) and
closed (an unknown field is refused, pydantic ``extra="forbid"``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from obliviate.request import MAX_DEADLINE, MAX_NOTE_CHARS, MAX_OWNER_CHARS

__all__ = ["FileRequest", "MAX_IDS", "MAX_OWNERS", "MAX_CLIENT_KEY"]

MAX_IDS = 100_000
MAX_OWNERS = 1_000
MAX_CLIENT_KEY = 100


class FileRequest(BaseModel):
    """A deletion request: ``ids`` and/or ``owners``; a deadline in days from now (or an ISO date); a
    ``client_key`` that makes filing idempotent (the same key from the same token returns the stored request)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ids: Annotated[
        list[Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]] | None,
        Field(max_length=MAX_IDS, description="Example ids to delete (int64)."),
    ] = None
    owners: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_OWNER_CHARS)]] | None,
        Field(max_length=MAX_OWNERS, description="Data subjects whose examples to delete."),
    ] = None
    note: Annotated[str, Field(max_length=MAX_NOTE_CHARS, description="Free text, e.g. a ticket number.")] = ""
    deadline_days: Annotated[
        int | None, Field(ge=0, le=MAX_DEADLINE.days, description="Days from now (default 30, GDPR's month).")
    ] = None
    deadline: Annotated[
        AwareDatetime | None,
        Field(strict=False, description="An absolute deadline, ISO 8601 with a timezone (instead of days).")
    ] = None
    client_key: Annotated[
        str | None,
        StringConstraints(min_length=1, max_length=MAX_CLIENT_KEY, pattern=r"^[\x21-\x7e]+$"),
        Field(description="Idempotency key (printable ASCII, no spaces); also accepted as the Idempotency-Key header."),
    ] = None
