"""Reading a file the user named (a certificate, a public key) with a typed error that says what it was."""

from __future__ import annotations

from pathlib import Path

from obliviate.errors import InvalidInputError

__all__ = ["read_user_file"]


def read_user_file(path: str | Path, what: str, *, hint: str = "") -> bytes:
    """The bytes of ``path``; a missing or unreadable file is an :class:`InvalidInputError` naming ``what``."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"no {what} at {path}{'; ' + hint if hint else ''}.") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}.") from exc
