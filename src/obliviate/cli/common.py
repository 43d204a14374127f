"""What every command shares: the app, the consoles, one-line failures, input parsing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from obliviate.errors import InvalidInputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Machine unlearning, measured against the model retrained without the data.",
    pretty_exceptions_enable=False,
)
out_console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """Print one line to stderr and exit with code 2."""
    from rich.markup import escape

    from obliviate.ledger.files import safe_for_terminal

    # the message may quote user text (an owner, a note, a path): escaped for rich and the terminal
    err_console.print(
        "[bold red]error:[/] " + escape(safe_for_terminal(str(message))),
        highlight=False,
        soft_wrap=True,
        emoji=False,
    )
    sys.exit(2)


def check_bench_settings(settings: Mapping[str, object], *, example: str) -> None:
    """Bench settings name their method (``method.key``); a bare key is a one-line error."""
    for key in settings:
        if "." not in key:
            raise InvalidInputError(
                f"bench settings name their method: write {key!r} as method.{key}, e.g. {example}.{key}."
            )


def writable_folder(folder: Path) -> Path:
    """``folder``, created; an unwritable one is a one-line error before any work starts."""
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"--out {folder} is not writable; choose another folder.")
    return folder


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--set expects method.key=value (e.g. scrub.alpha=0.1), got {pair!r}.")
        settings[key.strip()] = value.strip()
    return settings


def read_ids(path: Path) -> np.ndarray:
    """Ids from a JSON list or a text file of integers separated by whitespace or commas.

    Every id must be a whole number within int64; binary files, floats and ids beyond int64 are
    refused with :class:`InvalidInputError` (nothing wraps or is rounded)."""
    from obliviate.data.dataset import INT64_MAX, INT64_MIN

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read ids file {path}: {exc.strerror or exc}.") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise InvalidInputError(f"{path} is a binary file; an ids file lists integer ids (a line each, or JSON).")
    try:
        if text.lstrip().startswith("["):
            values = json.loads(text)
            if not isinstance(values, list):
                raise ValueError("the JSON is not a list")
        else:
            values = [tok for tok in text.replace(",", " ").split() if tok]
        if any(isinstance(v, bool | float) or not isinstance(v, int | str) for v in values):
            raise ValueError("ids must be whole numbers")
        ints = [int(v) for v in values]
    except (ValueError, TypeError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidInputError(f"{path} must list integer ids (one per line, or a JSON list): {exc}") from exc
    big = next((i for i in ints if not INT64_MIN <= i <= INT64_MAX), None)
    if big is not None:
        raise InvalidInputError(f"{path}: id {big} does not fit in int64 ({INT64_MIN}..{INT64_MAX}).")
    return np.asarray(ints, dtype=np.int64)


def load_data(spec: str):
    """``digits`` (its seed-0 training split) or an .npz file with arrays X, y and optional ids, owners.

    The .npz is read by :func:`obliviate.data.from_npz`: never unpickled, and every damaged or
    out-of-range input is an :class:`InvalidInputError` naming the file."""
    from obliviate.data import digits, from_npz

    if spec == "digits":
        return digits().split(test_size=0.25, seed=0)[0]
    path = Path(spec)
    if path.suffix != ".npz" or not path.exists():
        raise InvalidInputError(
            f"--data must be 'digits' or an existing .npz file with X, y (and ids, owners); got {spec!r}."
        )
    return from_npz(path)


def check_out_file(path: Path, option: str = "--out") -> None:
    """Refuse an output path that is not a regular file or absent: a folder, a device, a symlink.

    Checked before any work, so a long run does not end in a refusal (the writer checks again)."""
    from obliviate.storage import check_regular_target

    check_regular_target(path, what=option)


# ---------------------------------------------------------------------------------------------------- the ledger
LEDGER_HELP = (
    "Ledger folder, or a PostgreSQL DSN (postgresql://user@host/db) for a ledger several operators share "
    "(default: $OBLIVIATE_LEDGER or ./obliviate-ledger)."
)
LEDGER_FILES_HELP = (
    "A PostgreSQL ledger's folder for its signing key and exported certificate files (default: "
    "$OBLIVIATE_LEDGER_FILES); give every replica the same key. Not used with a ledger folder."
)


def ledger_location(value: str | None) -> str | Path | None:
    """A ``--ledger`` value: a DSN stays a string, anything else is a folder; None is the default ledger."""
    from obliviate.ledger.store import is_dsn

    if value is None:
        return None
    return value if is_dsn(value) else Path(value)
