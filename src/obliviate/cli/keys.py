"""Commands for the ledger's signing key: key show, key pin, key rotate (see :mod:`obliviate.ledger.keys`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from obliviate.cli.common import LEDGER_FILES_HELP, LEDGER_HELP, app, ledger_location, out_console
from obliviate.errors import InvalidInputError

key_app = typer.Typer(no_args_is_help=True, help="The ledger's signing key: show, pin or rotate it (audited).")
app.add_typer(key_app, name="key")

LedgerOption = Annotated[str | None, typer.Option("--ledger", help=LEDGER_HELP)]
LedgerFilesOption = Annotated[Path | None, typer.Option("--ledger-files", help=LEDGER_FILES_HELP)]


def _existing(ledger: str | None, files: Path | None = None):
    """The ledger at ``ledger`` (a folder or a PostgreSQL DSN); a folder without a ledger database is an error
    naming it (none is created)."""
    from obliviate.ledger import Ledger
    from obliviate.ledger.store import DB_NAME, default_ledger_location, is_dsn

    location = ledger_location(ledger) or default_ledger_location()
    if not is_dsn(location):
        db = Path(location) / DB_NAME
        if not db.is_file():
            raise InvalidInputError(
                f"no ledger at {location} (no {DB_NAME}); pass --ledger with the folder `obliviate request add` created."
            )
    return Ledger(location, files=files)


@key_app.command("show")
def key_show(ledger: LedgerOption = None, ledger_files: LedgerFilesOption = None) -> None:
    """Print the pinned signing-key fingerprint and the pin history."""
    from obliviate.ledger.keys import key_history, pinned_fingerprint, public_key_path

    with _existing(ledger, ledger_files) as book:
        pin = pinned_fingerprint(book)
        history = key_history(book)
        folder = book.folder
    if pin is None:
        out_console.print(
            f"no pinned signing key in {escape(str(folder))}: the next `obliviate apply` (or `obliviate key pin`) "
            "pins it.",
            soft_wrap=True,
        )
        return
    out_console.print(f"pinned signing key: {pin}", soft_wrap=True, highlight=False)
    out_console.print(f"public key file: {escape(str(public_key_path(folder)))}", soft_wrap=True, highlight=False)
    for entry in history:
        until = f"retired {entry.retired_at:%Y-%m-%d %H:%M:%S} UTC" if entry.retired_at else "current"
        revoked = ", revoked" if entry.revoked else ""
        out_console.print(
            f"  {entry.fingerprint}: pinned {entry.pinned_at:%Y-%m-%d %H:%M:%S} UTC ({escape(entry.how)}), "
            f"{until}{revoked}",
            soft_wrap=True,
            highlight=False,
        )


@key_app.command("pin")
def key_pin(ledger: LedgerOption = None, ledger_files: LedgerFilesOption = None) -> None:
    """Pin the ledger's signing key (made on first use if there is none); a no-op when already pinned."""
    from obliviate.ledger.keys import key_fingerprint, load_or_create_key

    with _existing(ledger, ledger_files) as book:
        key = load_or_create_key(book)
    out_console.print(f"pinned signing key: {key_fingerprint(key.public_key())}", soft_wrap=True, highlight=False)


@key_app.command("rotate")
def key_rotate(
    revoke: Annotated[
        bool,
        typer.Option("--revoke", help="The old key is compromised: its certificates stop verifying (apply again)."),
    ] = False,
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Make a new signing key and pin it, recorded in the ledger's events; earlier certificates still verify."""
    from obliviate.ledger.keys import key_fingerprint, rotate_key

    with _existing(ledger, ledger_files) as book:
        old, key = rotate_key(book, revoke=revoke)
    new = key_fingerprint(key.public_key())
    what = f"rotated the signing key {old} -> {new}" if old else f"pinned a new signing key {new}"
    out_console.print(what + ("; the old key is revoked" if revoke and old else ""), soft_wrap=True, highlight=False)
