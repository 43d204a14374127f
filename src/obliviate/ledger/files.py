"""Reading a file the user named (a certificate, a public key, a requests file) with a typed error that says what
it was, and making stored text safe to print."""

from __future__ import annotations

from pathlib import Path

from obliviate.errors import InvalidInputError

__all__ = ["read_user_file", "read_text_file", "safe_for_terminal"]


def read_user_file(path: str | Path, what: str, *, hint: str = "") -> bytes:
    """The bytes of ``path``; a missing or unreadable file is an :class:`InvalidInputError` naming ``what``."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"no {what} at {path}{'; ' + hint if hint else ''}.") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}.") from exc


def read_text_file(path: str | Path, what: str, *, limit: int = 256 * 2**20) -> str:
    """``path`` as UTF-8 text; a binary file (NUL bytes, not UTF-8) or one over ``limit`` bytes is an
    :class:`InvalidInputError` naming ``what``, like a missing or unreadable one."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > limit:
        raise InvalidInputError(f"{what} {path} is {path.stat().st_size} bytes; at most {limit} are read.")
    raw = read_user_file(path, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise InvalidInputError(f"{what} {path} is a binary file, not UTF-8 text.")
    return text


def safe_for_terminal(text: object) -> str:
    """``text`` with every non-printable character (terminal escape sequences, newlines, bidi controls)
    written as a visible ``\\x..``/``\\u....`` escape, so what reaches the terminal is inert."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))
