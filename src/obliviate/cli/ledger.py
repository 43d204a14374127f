"""Commands for deletion requests: ledger init, request add/import/list/show/retry, apply, status, verify.

The ledger lives in ``--ledger`` (default ``$OBLIVIATE_LEDGER`` or ``./obliviate-ledger``): the
SQLite file, the signing key under ``keys/`` and the certificates under ``certificates/``. A
``postgresql://`` DSN in place of the folder keeps the ledger in PostgreSQL
(:mod:`obliviate.ledger.postgres`), with the key and certificate files in ``--ledger-files DIR``
(or ``$OBLIVIATE_LEDGER_FILES``). Only
``ledger init`` and ``request add``/``import`` create a ledger; every other command on a folder
without one is an error naming it. Text that came from a request (owners, notes, keys, reasons)
is printed escaped: no rich markup and no terminal escape sequence reaches the terminal.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from obliviate.cli.common import (
    LEDGER_FILES_HELP,
    LEDGER_HELP,
    app,
    ledger_location,
    load_data,
    out_console,
    parse_settings,
    read_ids,
)
from obliviate.errors import InvalidInputError
from obliviate.ledger.files import safe_for_terminal
from obliviate.request import MAX_DEADLINE

request_app = typer.Typer(no_args_is_help=True, help="File and list deletion requests.")
app.add_typer(request_app, name="request")
ledger_app = typer.Typer(no_args_is_help=True, help="Create the ledger of deletion requests.")
app.add_typer(ledger_app, name="ledger")

LedgerOption = Annotated[str | None, typer.Option("--ledger", help=LEDGER_HELP)]
LedgerFilesOption = Annotated[Path | None, typer.Option("--ledger-files", help=LEDGER_FILES_HELP)]
STATUS_STYLE = {
    "received": "yellow",
    "scheduled": "cyan",
    "applied": "green",
    "verified": "bold green",
    "failed": "red",
}


def _open(ledger: str | Path | None, *, create: bool = False, files: Path | None = None):
    """The ledger in ``ledger`` (a folder or a DSN); only ``create=True`` (init, add, import) makes a new one."""
    from obliviate.ledger import Ledger

    return Ledger(ledger_location(ledger) if isinstance(ledger, str) else ledger, create=create, files=files)


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _show(text: object) -> str:
    """Stored or user-given text made inert for rich markup: non-printables escaped, then markup escaped
    (print it with :func:`_print`, which also turns off rich's ``:emoji:`` codes)."""
    return escape(safe_for_terminal(text))


def _cell(text: object) -> Text:
    """A table cell holding stored or user-given text literally (no markup, no emoji codes, no escapes)."""
    return Text(safe_for_terminal(text))


def _print(*objects, **options) -> None:
    out_console.print(*objects, emoji=False, **options)


def _deadline(days: object, where: str) -> timedelta:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DEADLINE.days:
        raise InvalidInputError(
            f"{where} must be a whole number of days from 0 to {MAX_DEADLINE.days}, got {days!r:.40}."
        )
    return timedelta(days=days)


@ledger_app.command("init")
def ledger_init(ledger: LedgerOption = None, ledger_files: LedgerFilesOption = None) -> None:
    """Create an empty ledger (folder mode 0700, database 0600); an existing ledger is left unchanged."""
    with _open(ledger, create=True, files=ledger_files) as book:
        created, folder, n = book.created, book.location, sum(book.counts().values())
    if created:
        _print(f"created the ledger {_show(folder)}", soft_wrap=True)
    else:
        _print(f"the ledger {_show(folder)} already exists ({n} request(s)); unchanged.", soft_wrap=True)


@ledger_app.command("policy")
def ledger_policy(
    every_days: Annotated[float | None, typer.Option("--every-days", help="Retrain every D days (from now).")] = None,
    every_hours: Annotated[
        float | None, typer.Option("--every-hours", help="Retrain every H hours (from now).")
    ] = None,
    pending: Annotated[
        int | None, typer.Option("--pending", help="Also retrain as soon as N requests are open.")
    ] = None,
    duration_hours: Annotated[
        float, typer.Option("--duration-hours", help="How long a retrain takes before its requests are applied.")
    ] = 0.0,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the policy: requests are filed unchecked.")] = False,
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Show or set the retrain-every policy; filing then refuses deadlines the policy cannot meet."""
    from obliviate.ledger.policy import RetrainPolicy, clear_policy, get_policy, set_policy
    from obliviate.ledger.store import utc_now

    if every_days is not None and every_hours is not None:
        raise InvalidInputError("give the period once: --every-days or --every-hours, not both.")
    for name, value in (
        ("--every-days", every_days),
        ("--every-hours", every_hours),
        ("--duration-hours", duration_hours),
    ):
        if value is not None and not (value >= 0 and value < 1e6):
            raise InvalidInputError(f"{name} must be a number from 0 to 1e6, got {value!r}.")
    setting = every_days is not None or every_hours is not None or pending is not None
    if clear and setting:
        raise InvalidInputError("--clear takes no other option; clear first, then set a new policy.")
    with _open(ledger, files=ledger_files) as book:
        if clear:
            clear_policy(book)
            _print("retrain policy cleared: requests are filed without a deadline check.")
            return
        if setting:
            period = None
            if every_days is not None or every_hours is not None:
                period = timedelta(days=every_days) if every_days is not None else timedelta(hours=every_hours)
            start = utc_now().replace(second=0, microsecond=0)
            set_policy(
                book,
                RetrainPolicy(period=period, pending=pending, start=start, duration=timedelta(hours=duration_hours)),
            )
        policy = get_policy(book)
    if policy is None:
        _print("no retrain policy: `obliviate apply` applies what is due whenever it runs.")
    else:
        _print(f"retrain policy: {_show(policy.describe())}", soft_wrap=True)


@request_app.command("add")
def request_add(
    owner: Annotated[
        list[str] | None, typer.Option("--owner", help="A data subject whose examples to delete (repeatable).")
    ] = None,
    ids: Annotated[
        Path | None, typer.Option(help="File of example ids to delete (one per line, or a JSON list).")
    ] = None,
    deadline_days: Annotated[
        int, typer.Option(help=f"Days from now until the deadline, 0 to {MAX_DEADLINE.days} (GDPR: one month).")
    ] = 30,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key (default: hash of the ids and owners asked).")
    ] = None,
    note: Annotated[str, typer.Option(help="Free text kept with the request (e.g. the ticket number).")] = "",
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """File a deletion request (creating the ledger if there is none); the same request (same key) filed
    again returns the stored one."""
    from obliviate.request import ForgetRequest

    if not owner and ids is None:
        raise InvalidInputError("name what to delete: --owner NAME (repeatable) and/or --ids FILE.")
    request = ForgetRequest(
        read_ids(ids) if ids is not None else None,
        owners=owner,
        deadline=_deadline(deadline_days, "--deadline-days"),
        note=note,
    )
    with _open(ledger, create=True, files=ledger_files) as book:
        stored, created = book.add(request, key=key)
    what = ", ".join(filter(None, [f"{len(stored.ids)} ids" if stored.ids else "", ", ".join(stored.owners)]))
    verb = "filed" if created else "already filed (same key), unchanged:"
    _print(
        f"{verb} [bold]{_show(stored.request_id)}[/] ({_show(what)}), status {stored.status}, "
        f"deadline {_when(stored.deadline)}",
        soft_wrap=True,
    )


def _requests_from_file(path: Path):
    """``(ForgetRequest, key)`` pairs from a JSON list or JSON lines of {ids, owners, key, note, deadline_days}."""
    from obliviate.errors import ObliviateError
    from obliviate.ledger.files import read_text_file
    from obliviate.request import ForgetRequest

    text = read_text_file(path, "requests file")
    try:
        records = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidInputError(f"{path} must be a JSON list or JSON lines of request objects: {exc}.") from exc
    if not isinstance(records, list):
        raise InvalidInputError(f"{path} must be a JSON list or JSON lines of request objects.")
    out = []
    for n, record in enumerate(records, 1):
        unknown = set(record) - {"ids", "owners", "key", "note", "deadline_days"} if isinstance(record, dict) else None
        if unknown is None or unknown:
            raise InvalidInputError(
                f"{path}, request {n}: expected an object with ids, owners, key, note, deadline_days; "
                f"got {safe_for_terminal(repr(record))[:80]}."
            )
        try:
            key = record.get("key")
            if key is not None and not isinstance(key, str):
                raise InvalidInputError(f"key must be text, got {type(key).__name__}.")
            request = ForgetRequest(
                record.get("ids"),
                owners=record.get("owners"),
                deadline=_deadline(record.get("deadline_days", 30), "deadline_days"),
                note=record.get("note", ""),
            )
        except ObliviateError as exc:
            raise InvalidInputError(f"{path}, request {n}: {exc}") from exc
        out.append((request, key))
    if not out:
        raise InvalidInputError(f"{path} holds no request.")
    return out


@request_app.command("import")
def request_import(
    path: Annotated[Path, typer.Argument(help="JSON list or JSON lines of {ids, owners, key, note, deadline_days}.")],
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """File many requests in one transaction (one fsync); same idempotency as `request add`."""
    pairs = _requests_from_file(path)
    with _open(ledger, create=True, files=ledger_files) as book:
        stored = book.add_many([r for r, _ in pairs], keys=[k for _, k in pairs])
    created = sum(1 for _, new in stored if new)
    _print(f"filed {created} request(s); {len(stored) - created} already filed (same key), unchanged.")


@request_app.command("list")
def request_list(
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only requests past their deadline and not applied.")
    ] = False,
    status: Annotated[
        str | None, typer.Option(help="Only this status: received, scheduled, applied, verified, failed.")
    ] = None,
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """List requests by deadline; overdue ones in red."""
    from obliviate.ledger.store import utc_now

    with _open(ledger, files=ledger_files) as book:
        rows = book.requests(status=status, overdue=overdue)
    now = utc_now()
    table = Table(title=f"deletion requests ({len(rows)})")
    table.add_column("request", no_wrap=True)
    table.add_column("asks", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("status", no_wrap=True)
    table.add_column("deadline (UTC)", no_wrap=True)
    table.add_column("note / batch / reason", no_wrap=True, overflow="ellipsis", max_width=36)
    late = 0
    for r in rows:
        asks = ", ".join(filter(None, [", ".join(r.owners), f"{len(r.ids)} ids" if r.ids else ""]))
        is_late = r.overdue(now)
        late += is_late
        table.add_row(
            _cell(r.request_id),
            _cell(asks),
            Text(safe_for_terminal(r.status), style=STATUS_STYLE.get(r.status, "")),
            f"{r.deadline:%Y-%m-%d %H:%M}" + (" OVERDUE" if is_late else ""),
            _cell(r.reason or r.batch_id or r.note),
            style="bold red" if is_late else None,
        )
    _print(table)
    if late:
        _print(
            f"[bold red]{late} request(s) OVERDUE[/]: run `obliviate apply` now "
            "(a failed one: fix the cause, then `obliviate request retry ID`)."
        )
    else:
        _print("no overdue request.")


@request_app.command("show")
def request_show(
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """One request and its audit trail (every transition, UTC)."""
    from obliviate.ledger import certificate_path

    with _open(ledger, files=ledger_files) as book:
        r = book.get(request_id)
        trail = book.history(request_id)
        has_cert = book.certificate(request_id) is not None
        folder = book.folder
    _print(
        f"[bold]{_show(r.request_id)}[/] key {_show(r.key)}\n  ids {list(r.ids)[:20]}"
        f"{' ...' if len(r.ids) > 20 else ''} owners {_show(list(r.owners))}\n  status "
        f"[{STATUS_STYLE.get(r.status, 'white')}]{_show(r.status)}[/], deadline {_when(r.deadline)}"
        + (" [bold red]OVERDUE[/]" if r.overdue() else "")
        + (f"\n  reason: {_show(r.reason)}" if r.reason else "")
        + (f"\n  note: {_show(r.note)}" if r.note else "")
        + (f"\n  certificate: {_show(certificate_path(folder, r.request_id))}" if has_cert else ""),
        soft_wrap=True,
    )
    table = Table(title="audit trail")
    for column in ("at (UTC)", "from", "to", "batch", "detail"):
        table.add_column(column)
    for t in trail:
        table.add_row(
            t.at.isoformat(timespec="milliseconds"),
            _cell(t.from_status or "-"),
            _cell(t.to_status),
            _cell(t.batch_id or ""),
            _cell(t.detail or ""),
        )
    _print(table)


@request_app.command("retry")
def request_retry(
    request_id: Annotated[str, typer.Argument(help="A failed request's id.")],
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Put a failed request back to received, so the next apply takes it again."""
    from obliviate.ledger import RECEIVED

    with _open(ledger, files=ledger_files) as book:
        book.transition([request_id], RECEIVED, reason="retry")
    _print(f"{_show(request_id)} is received again; `obliviate apply` will take it.", soft_wrap=True)


def _test_split(spec: str | None):
    if spec is None:
        return None
    if spec == "digits":
        from obliviate.data import digits

        return digits().split(test_size=0.25, seed=0)[1]
    return load_data(spec)


def _target(
    sisa: Path | None,
    model: Path | None,
    *,
    method: str,
    settings: dict,
    seed: int,
    backend: str,
    address,
    summation: Path | None = None,
    store: Path | None = None,
    expand: bool = True,
):
    from obliviate.ledger import ModelTarget, SisaTarget

    if sum(x is not None for x in (sisa, model, summation, store)) != 1:
        raise InvalidInputError(
            "give exactly one target: --sisa FOLDER (a SISA ensemble), --model FILE (a saved model), "
            "--summation FILE (a summation-form learner) or --store DIR (a document store)."
        )
    if store is not None:
        from obliviate.retrieval.expand import ExpansionPolicy
        from obliviate.retrieval.ledger_target import StoreTarget

        return StoreTarget(store, policy=ExpansionPolicy() if expand else None)
    if summation is not None:
        from obliviate.ledger.summation_target import SummationTarget

        return SummationTarget(summation)
    if sisa is not None:
        return SisaTarget(sisa, backend=backend, address=address)
    return ModelTarget(model, method=method, settings=settings, seed=seed)


@app.command("apply")
def apply_cmd(
    sisa: Annotated[
        Path | None, typer.Option(help="A SISA ensemble folder: deletions are exact (shards retrained).")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="A saved model file, unlearned in place with --method.")] = None,
    summation: Annotated[
        Path | None, typer.Option(help="A summation-form learner file (exact deletes; obliviate.exact.summation).")
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="A document store folder (`obliviate store init`): the requests' documents and their accepted "
            "near-duplicates, quotations and paraphrases are deleted (exact)."
        ),
    ] = None,
    no_expand: Annotated[
        bool, typer.Option("--no-expand", help="With --store: delete only the named documents, not their copies.")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(help="The training data: 'digits' or an .npz (default: the model file's record, else digits)."),
    ] = None,
    test: Annotated[str | None, typer.Option(help="Test split for MIA-Efficacy evidence: 'digits' or an .npz.")] = None,
    method: Annotated[
        str, typer.Option(help="Unlearning method for --model (any of `obliviate methods`).")
    ] = "finetune",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Method setting key=value (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the unlearning method and of the MIA subsampling.")] = 0,
    backend: Annotated[str, typer.Option(help="SISA retraining backend: local or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address for --backend ray.")] = None,
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Apply every due request in one batch; write a signed certificate per request.

    Every flag is checked (and the ledger, target, data and test split loaded) before any request
    changes state, so a mistake in them fails no request."""
    from obliviate.ledger import apply
    from obliviate.ledger.apply import MAX_SEED
    from obliviate.parallel import check_backend

    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {seed}.")
    if store is not None and (data is not None or test is not None):
        raise InvalidInputError(
            "--store takes no --data or --test: requests resolve against the store's own documents and owners; "
            "drop those options."
        )
    if no_expand and store is None:
        raise InvalidInputError("--no-expand only applies to --store DIR (a document store); drop it.")
    check_backend(backend, address)
    with _open(ledger, files=ledger_files) as book:  # a missing ledger is an error before any work
        target = _target(
            sisa,
            model,
            method=method,
            settings=parse_settings(set_),
            seed=seed,
            backend=backend,
            address=address,
            summation=summation,
            store=store,
            expand=not no_expand,
        )
        try:
            if store is not None:
                dataset, test_split = target.dataset(), None
            else:
                dataset = load_data(data or getattr(target, "data_name", None) or "digits")
                test_split = _test_split(test)
            outcome = apply(book, target, dataset, test=test_split, seed=seed)
        finally:
            if hasattr(target, "close"):
                target.close()
    if outcome.nothing_due:
        _print("nothing due: every request is applied, verified or failed.")
        return
    for batch in outcome.batches:
        _print_batch(batch)
    for request, reason in outcome.failed_before_scheduling:
        _print(f"[bold red]failed[/] {_show(request.request_id)}: {_show(reason)}", soft_wrap=True)
    if outcome.failed:
        raise InvalidInputError(
            f"{len(outcome.failed)} request(s) failed (reasons above); fix them and run `obliviate request retry ID`."
        )


def _print_batch(batch) -> None:
    d = batch.deletion
    head = f"batch {batch.batch_id}" + (" (resumed after an interrupted apply)" if batch.resumed else "")
    if d is not None:
        head += (
            f": {d.method} ({d.guarantee}), {len(d.removed_ids)} ids removed"
            + (f", {len(d.details['expanded_ids'])} copies deleted with them" if d.details.get("expanded_ids") else "")
            + (f", {len(d.already_deleted_ids)} already gone" if d.already_deleted_ids else "")
            + (f", shards rebuilt {d.shards_rebuilt}" if d.shards_rebuilt else "")
            + f", {d.seconds:.2f} s"
        )
    _print(_show(head), soft_wrap=True)
    store = any(cert["target"].get("kind") == "store" for _, _, cert in batch.applied)
    table = Table()
    columns = (
        ("request", "ids", "copies deleted (ids)", "still present (ids)", "deadline")
        if store
        else ("request", "ids", "forget acc %", "MIA-Eff. %", "deadline")
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    for request, _, cert in batch.applied:
        ev = cert["evidence"]
        late = cert["overdue"]
        if store:
            present = sorted({i for found in ev.get("still_present", {}).values() for i in found})
            middle = [_cell(", ".join(map(str, ev.get("expanded_ids", []))) or "none"), _cell(present or "none")]
        else:
            accuracy = ev.get("forget_accuracy")
            middle = [
                f"{100 * accuracy:.1f}" if accuracy is not None else "-",
                f"{100 * ev['mia_efficacy']:.1f}" if "mia_efficacy" in ev else "-",
            ]
        table.add_row(
            _cell(request.request_id),
            str(len(cert["removed_ids"])),
            *middle,
            "OVERDUE (applied late)" if late else "met",
            style="bold red" if late else None,
        )
    if batch.applied:
        _print(table)
        _print(f"signed certificates: {_show(batch.applied[0][1].parent)}/<request>.json", soft_wrap=True)
    for request, reason in batch.failed:
        _print(f"[bold red]failed[/] {_show(request.request_id)}: {_show(reason)}", soft_wrap=True)


@app.command("status")
def status_cmd(ledger: LedgerOption = None, ledger_files: LedgerFilesOption = None) -> None:
    """Counts per state, the overdue count, the next deadline and the pinned signing key."""
    from obliviate.ledger import STATUSES

    with _open(ledger, files=ledger_files) as book:
        counts = book.counts()
        late = book.requests(overdue=True)
        upcoming = book.next_deadline()
        folder = book.location
        pinned = book.get_meta("signing_key_fingerprint")
        from obliviate.ledger.policy import get_policy
        from obliviate.ledger.store import utc_now

        policy = get_policy(book)
        open_now = counts["received"] + counts["scheduled"]
    _print(f"ledger {_show(folder)}", soft_wrap=True)
    _print(f"signing key: {_show(pinned) if pinned else 'none pinned yet'}", soft_wrap=True)
    table = Table()
    table.add_column("status")
    table.add_column("requests", justify="right")
    for status in STATUSES:
        table.add_row(f"[{STATUS_STYLE[status]}]{status}[/]", str(counts[status]))
    _print(table)
    if late:
        _print(
            f"[bold red]{len(late)} request(s) OVERDUE[/] (oldest deadline {_when(late[0].deadline)}): "
            "run `obliviate apply`; `obliviate request list --overdue` lists them."
        )
    else:
        _print("no overdue request.")
    if upcoming is not None:
        _print(
            f"next deadline: {_when(upcoming.deadline)} ({_show(upcoming.request_id)}, {upcoming.status})",
            soft_wrap=True,
        )
    else:
        _print("no open request.")
    if policy is None:
        _print("retrain policy: none (`obliviate ledger policy` sets one).")
    else:
        slot = policy.next_slot(utc_now())
        _print(f"retrain policy: {_show(policy.describe())}", soft_wrap=True)
        if policy.count_due(open_now):
            _print(
                f"[bold]retrain due now[/]: {open_now} open request(s) reached the pending count; run `obliviate apply`."
            )
        if slot is not None:
            _print(f"next scheduled retrain: {_when(slot)}", soft_wrap=True)
        elif policy.pending is not None:
            _print(f"next retrain: when {policy.pending - open_now} more request(s) are open.", soft_wrap=True)


@app.command("verify")
def verify_cmd(
    certificates: Annotated[list[Path], typer.Argument(help="Certificate JSON files written by `obliviate apply`.")],
    sisa: Annotated[Path | None, typer.Option(help="The SISA ensemble folder the certificates are about.")] = None,
    model: Annotated[Path | None, typer.Option(help="The model file the certificates are about.")] = None,
    summation: Annotated[
        Path | None, typer.Option(help="The summation-form learner file the certificates are about.")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="The document store folder the certificates are about.")] = None,
    pubkey: Annotated[
        Path | None, typer.Option(help="Trusted public key (default: the ledger's keys/ed25519.pub).")
    ] = None,
    ledger: LedgerOption = None,
    ledger_files: LedgerFilesOption = None,
) -> None:
    """Check each certificate's signature, the model's hash and that no removed id is in the model.

    Requests whose certificates pass are marked verified in the ledger (one transaction for all);
    exits 1 if any check fails.
    """
    from obliviate.ledger import ModelTarget, SisaTarget, mark_verified, verify_certificate

    target = None
    if sum(x is not None for x in (sisa, model, summation, store)) > 1:
        raise InvalidInputError("give one of --sisa, --model, --summation and --store, not several.")
    if store is not None:
        from obliviate.retrieval.ledger_target import StoreTarget

        target = StoreTarget(store)
    elif summation is not None:
        from obliviate.ledger.summation_target import SummationTarget

        target = SummationTarget(summation)
    elif sisa is not None:
        target = SisaTarget(sisa)
    elif model is not None:
        target = ModelTarget(model)
    from obliviate.ledger.store import DB_NAME, default_ledger_location, is_dsn

    location = ledger_location(ledger) if ledger is not None else default_ledger_location()
    try:
        if is_dsn(location):
            book = _open(location, files=ledger_files)
        else:
            folder = Path(location)
            if not (folder / DB_NAME).exists() and (ledger is not None or pubkey is None):
                _open(folder).close()  # the error naming the folder (--pubkey without --ledger verifies without one)
            book = _open(folder) if (folder / DB_NAME).exists() else None
        try:
            results = [
                verify_certificate(path, target, ledger=book, pubkey=pubkey, mark=False) for path in certificates
            ]
            if book is not None:
                mark_verified(book, results)
        finally:
            if book is not None:
                book.close()
    finally:
        if hasattr(target, "close"):
            target.close()
    for result in results:
        _print(f"certificate {_show(result.certificate)} (request {_show(result.request_id)})", soft_wrap=True)
        for check in result.checks:
            mark = "[bold green]PASS[/]" if check.ok else "[bold red]FAIL[/]"
            _print(f"  {mark} {_show(check.name)}: {_show(check.detail)}", soft_wrap=True)
        if target is None:
            _print(
                "  [yellow]model not checked[/]: pass --sisa FOLDER, --model FILE, --summation FILE or --store DIR "
                "to check the model (or store) too."
            )
        elif result.ok:
            _print(
                "  [bold green]verified[/]"
                + ("; request marked verified in the ledger" if result.marked_verified else "")
                + (
                    "; the ledger is unchanged: this is not the certificate it issued for the request"
                    if book is not None and not result.issued_by_ledger
                    else ""
                )
            )
    failed = [r for r in results if not r.ok]
    if failed:
        _print(f"[bold red]verification FAILED[/] for {len(failed)} of {len(results)} certificate(s)")
        sys.exit(1)
