"""Commands for the service: ``serve`` (the HTTP API and dashboard) and ``token create/list/revoke``.

Tokens live in ``<ledger>/service.sqlite`` (hashed; a token is shown once, when it is created).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from obliviate.cli.common import LEDGER_FILES_HELP, LEDGER_HELP, app, ledger_location, out_console, parse_settings
from obliviate.errors import InvalidInputError
from obliviate.ledger.files import safe_for_terminal

token_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke the service's bearer tokens.")
app.add_typer(token_app, name="token")

LedgerOption = Annotated[str | None, typer.Option("--ledger", help=LEDGER_HELP)]
LedgerFilesOption = Annotated[Path | None, typer.Option("--ledger-files", help=LEDGER_FILES_HELP)]


def _location(ledger: str | None) -> str | Path:
    """The ledger's folder or PostgreSQL DSN (default: $OBLIVIATE_LEDGER or ./obliviate-ledger)."""
    from obliviate.ledger.store import default_ledger_location

    return ledger_location(ledger) or default_ledger_location()


def _shown(location: str | Path) -> str:
    """A ledger location as messages may show it: a DSN without its password."""
    from obliviate.ledger.store import is_dsn

    if is_dsn(location):
        from obliviate.ledger.postgres import redact_dsn

        return redact_dsn(str(location))
    return str(location)


def _tokens_folder(ledger: str | None, files: Path | None, *, create: bool = False) -> Path:
    """Where the service keeps its token table: the ledger folder, or a PostgreSQL ledger's files folder."""
    from obliviate.ledger import Ledger

    with Ledger(_location(ledger), files=files, create=create) as book:
        return Path(book.folder)


def _needs_service_extra() -> None:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise InvalidInputError(
            f"the service needs {', '.join(missing)}: pip install 'obliviate[service]'."
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve(
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
    sisa: Annotated[Path | None, typer.Option(help="A SISA ensemble folder to apply requests to.")] = None,
    model: Annotated[Path | None, typer.Option(help="A saved model file to unlearn in place with --method.")] = None,
    method: Annotated[str, typer.Option(help="Unlearning method for --model.")] = "finetune",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Method setting key=value (repeatable).")] = None,
    data: Annotated[
        str | None, typer.Option(help="Training data: 'digits' or an .npz (default: the model's record, else digits).")
    ] = None,
    test: Annotated[str | None, typer.Option(help="Test split for MIA evidence: 'digits-test' or an .npz.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the unlearning method and of the MIA subsampling.")] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless --public).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    report: Annotated[
        Path | None, typer.Option(help="A benchmark report file, or a folder whose newest report.html is shown.")
    ] = None,
    rate: Annotated[float, typer.Option(help="Calls per second per token (0: no limit).")] = 50.0,
    burst: Annotated[int, typer.Option(help="Calls a token may make at once before the rate applies.")] = 100,
    max_body: Annotated[int, typer.Option(help="Largest request body in bytes.")] = 1 << 20,
    max_group: Annotated[
        int, typer.Option(help="Filings committed in one transaction at most (group commit; 1 turns it off).")
    ] = 512,
    public: Annotated[
        bool, typer.Option(help="Allow a non-loopback --host (put TLS in front: tokens travel in headers).")
    ] = False,
) -> None:
    """Serve the ledger over HTTP: the API (OpenAPI schema at /openapi.json) and the dashboard at /."""
    _needs_service_extra()
    if not 0 < port < 65536:
        raise InvalidInputError(f"--port must be 1..65535, got {port}.")
    if not _loopback(host) and not public:
        raise InvalidInputError(
            f"--host {host} is not a loopback address; bearer tokens would cross the network in clear. Put a TLS "
            "proxy in front and pass --public, or serve on 127.0.0.1."
        )
    if rate < 0 or burst < 1 or max_body < 1024 or max_group < 1:
        raise InvalidInputError("--rate must be >= 0, --burst >= 1, --max-body >= 1024 and --max-group >= 1.")
    import uvicorn

    from obliviate.service import ServiceConfig, create_app

    config = ServiceConfig(
        ledger=_location(ledger),
        ledger_files=ledger_files,
        sisa=sisa,
        model=model,
        method=method,
        settings=parse_settings(set_),
        data=data,
        test=test,
        seed=seed,
        report=report,
        rate=rate,
        burst=burst,
        max_body=max_body,
        max_group=max_group,
    )
    application = create_app(config)
    out_console.print(
        f"serving the ledger {safe_for_terminal(_shown(config.ledger))} on http://{host}:{port} (dashboard at /, OpenAPI "
        "schema at /openapi.json); Ctrl-C stops it.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


@token_app.command("create")
def token_create(
    scope: Annotated[
        list[str], typer.Option("--scope", help="requester, operator or auditor (repeatable, or comma-separated).")
    ],
    name: Annotated[str, typer.Option(help="Who the token is for (kept with it).")] = "",
    days: Annotated[int, typer.Option(help="Days until the token expires.")] = 90,
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Create a token (creating the ledger if there is none); it is printed once and stored hashed."""
    from obliviate.service.tokens import TokenStore, check_scopes

    scopes = check_scopes([s for item in scope for s in item.split(",")])
    with TokenStore(_tokens_folder(ledger, ledger_files, create=True)) as store:
        token, record = store.create(list(scopes), name=name, days=days)
    out_console.print(token, highlight=False, soft_wrap=True, markup=False)
    typer.echo(
        f"token {record.token_id} ({', '.join(record.scopes)}) expires {record.expires:%Y-%m-%d %H:%M} UTC; it is "
        "shown only now: keep it secret.",
        err=True,
    )


@token_app.command("list")
def token_list(ledger: LedgerOption = None, ledger_files: LedgerFilesOption = None) -> None:
    """Every token: id, scopes, name, expiry, whether revoked (never the token itself)."""
    from obliviate.service.tokens import TokenStore

    with TokenStore(_tokens_folder(ledger, ledger_files)) as store:
        tokens = store.list()
    table = Table(title=f"tokens ({len(tokens)})")
    for column in ("id", "scopes", "name", "expires (UTC)", "state"):
        table.add_column(column, no_wrap=True)
    for t in tokens:
        state = "revoked" if t.revoked else ("active" if t.active() else "expired")
        table.add_row(t.token_id, ", ".join(t.scopes), Text(safe_for_terminal(t.name)), f"{t.expires:%Y-%m-%d %H:%M}",
                      state)
    out_console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (`obliviate token list`).")],
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Revoke a token: a running server refuses it within two seconds."""
    from obliviate.service.tokens import TokenStore

    with TokenStore(_tokens_folder(ledger, ledger_files)) as store:
        record = store.revoke(token_id)
    out_console.print(f"revoked {record.token_id}", highlight=False, markup=False)


if __name__ == "__main__":  # `python -m obliviate.cli.service serve|token ...` before `obliviate serve` is registered
    from obliviate.cli import main

    main()
