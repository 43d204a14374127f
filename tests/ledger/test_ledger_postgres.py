"""The PostgreSQL ledger: durability settings, creation rules, concurrent filing, the apply lock, apply and the CLI.

Against a real, throwaway server (the ``pg_server`` session fixture of ``conftest.py``); the store's behaviour
tests of ``test_store.py`` run against both backends through ``any_ledger``."""

from __future__ import annotations

import threading

import pytest

import obliviate as ob
from obliviate.errors import ApplyInProgressError, InvalidInputError, LedgerNotFoundError, LedgerUnavailableError
from obliviate.ledger import (
    APPLIED,
    RECEIVED,
    SCHEDULED,
    InvalidTransitionError,
    Ledger,
    SisaTarget,
    apply,
    verify_certificate,
)
from obliviate.ledger.postgres import ForeignDatabaseError, redact_dsn

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'obliviate[postgres]'")


@pytest.fixture
def pg_ledger(pg_dsn, tmp_path):
    with Ledger(pg_dsn, files=tmp_path / "files", create=True) as book:
        yield book


def test_a_postgres_ledger_commits_synchronously_and_keeps_the_sqlite_tables(pg_ledger):
    assert pg_ledger.backend == "postgresql" and pg_ledger.created
    row = pg_ledger._db.execute("SELECT current_setting('synchronous_commit') AS s, current_setting('fsync') AS f")
    assert row.fetchone() == {"s": "on", "f": "on"}
    columns = pg_ledger._query(
        "SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    tables: dict[str, set[str]] = {}
    for r in columns:
        tables.setdefault(r["t"], set()).add(r["c"])
    import sqlite3

    with Ledger(pg_ledger.folder.parent / "sqlite-twin", create=True) as twin:
        expected = {
            name: {c[1] for c in twin._db.execute(f"PRAGMA table_info({name})")}
            for (name,) in twin._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "sqlite_sequence"
        }
    assert isinstance(twin._db, sqlite3.Connection) and tables == expected


def test_opening_needs_create_and_a_foreign_database_is_refused(pg_server, pg_dsn, tmp_path):
    with pytest.raises(LedgerNotFoundError, match="no ledger in the PostgreSQL database.*ledger init"):
        Ledger(pg_dsn, files=tmp_path / "f")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id INT PRIMARY KEY)")
    for create in (False, True):
        with pytest.raises(ForeignDatabaseError, match="holds other tables \\(users\\).*database of its own"):
            Ledger(pg_dsn, files=tmp_path / "f", create=create)
    with psycopg.connect(pg_dsn) as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert names == {"users"}  # nothing was written into the foreign database


def test_the_files_folder_is_required_and_an_unreachable_server_is_a_typed_error(pg_dsn, tmp_path, monkeypatch):
    monkeypatch.delenv("OBLIVIATE_LEDGER_FILES", raising=False)
    with pytest.raises(InvalidInputError, match="--ledger-files DIR"):
        Ledger(pg_dsn, create=True)
    monkeypatch.setenv("OBLIVIATE_LEDGER_FILES", str(tmp_path / "from-env"))
    with Ledger(pg_dsn, create=True) as book:
        assert book.folder == tmp_path / "from-env" and book.folder.is_dir()
    with pytest.raises(LedgerUnavailableError, match="cannot reach the PostgreSQL ledger .*:\\*\\*\\*@"):
        Ledger("postgresql://obliviate:secret@127.0.0.1:1/none", files=tmp_path / "f")
    assert redact_dsn("postgresql://u:p4ss@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_dsn("postgresql://h/db?sslmode=require&password=p4ss") == "postgresql://h/db?sslmode=require&password=***"
    assert "p4ss" not in redact_dsn("host=h password='p4 ss' dbname=x")


def test_concurrent_filings_of_the_same_keys_make_one_request_each(pg_ledger, pg_dsn):
    """Eight connections file the same 25 requests at once: 25 rows, every caller gets the stored one."""
    requests = [ob.ForgetRequest(ids=[i]) for i in range(25)]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def file() -> None:
        try:
            with Ledger(pg_dsn, files=pg_ledger.folder) as book:
                barrier.wait()
                results.append([stored.request_id for stored, _ in book.add_many(requests)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=file) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8
    assert all(r == results[0] for r in results)
    assert len(pg_ledger.requests()) == 25 and len(pg_ledger.history()) == 25


def test_two_operators_cannot_both_move_a_request(pg_ledger, pg_dsn):
    r, _ = pg_ledger.add(ob.ForgetRequest(ids=[1]))
    with Ledger(pg_dsn, files=pg_ledger.folder) as other:
        other.transition([r.request_id], SCHEDULED, batch_id="b-other")
        with pytest.raises(InvalidTransitionError, match="is scheduled; it cannot become scheduled"):
            pg_ledger.transition([r.request_id], SCHEDULED, batch_id="b-mine")
    assert pg_ledger.get(r.request_id).batch_id == "b-other"


def test_the_apply_lock_is_one_advisory_lock_across_connections(pg_ledger, pg_dsn):
    with Ledger(pg_dsn, files=pg_ledger.folder) as other:
        with pg_ledger.apply_lock():
            with pytest.raises(ApplyInProgressError, match="another `obliviate apply`"):
                with other.apply_lock():
                    pass
        with other.apply_lock():  # released
            pass


def test_apply_on_postgres_signs_and_verifies(pg_ledger, sisa_folder, owned_data):
    r, _ = pg_ledger.add(ob.ForgetRequest(ids=[int(owned_data.ids[3])]))
    outcome = apply(pg_ledger, SisaTarget(sisa_folder), owned_data)
    assert [req.request_id for req, _, _ in outcome.applied] == [r.request_id]
    assert pg_ledger.get(r.request_id).status == APPLIED and pg_ledger.certificate(r.request_id)
    assert (pg_ledger.folder / "certificates" / f"{r.request_id}.json").is_file()  # the export
    assert verify_certificate(outcome.applied[0][1], SisaTarget(sisa_folder), ledger=pg_ledger).ok


def test_the_cli_takes_a_dsn_and_a_files_folder(cli, pg_dsn, tmp_path):
    files = tmp_path / "pg-files"
    done = cli("ledger", "init", "--ledger", pg_dsn, "--ledger-files", files)
    assert done.returncode == 0, done.stderr
    assert cli("request", "add", "--owner", "alice", "--ledger", pg_dsn, "--ledger-files", files).returncode == 0
    listed = cli("request", "list", "--ledger", pg_dsn, "--ledger-files", files)
    assert listed.returncode == 0 and "alice" in listed.stdout and RECEIVED in listed.stdout
    missing = cli("request", "list", "--ledger", pg_dsn)
    assert missing.returncode == 2 and "--ledger-files" in missing.stderr


def test_keys_and_tokens_take_a_dsn(cli, pg_dsn, tmp_path):
    """`key pin/show` and `token create/list` open a PostgreSQL ledger like the ledger commands do; messages never
    show the DSN's password."""
    files = tmp_path / "pg-files"
    assert cli("ledger", "init", "--ledger", pg_dsn, "--ledger-files", files).returncode == 0
    pinned = cli("key", "pin", "--ledger", pg_dsn, "--ledger-files", files)
    assert pinned.returncode == 0, pinned.stderr
    shown = cli("key", "show", "--ledger", pg_dsn, "--ledger-files", files)
    assert shown.returncode == 0 and pinned.stdout.split()[-1] in shown.stdout
    made = cli("token", "create", "--scope", "auditor", "--name", "pg", "--ledger", pg_dsn, "--ledger-files", files)
    assert made.returncode == 0, made.stderr
    listed = cli("token", "list", "--ledger", pg_dsn, "--ledger-files", files)
    assert listed.returncode == 0 and "auditor" in listed.stdout
    assert (files / "service.sqlite").is_file()
