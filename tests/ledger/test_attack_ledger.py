"""The ledger under attack (issue 10, cases 2, 5-9 and the ledger CLI's inputs): each test tries what a careless
operator or a hostile party did, and asserts a typed one-line error (exit code 2) that changed nothing.

Case 2: an empty or foreign ledger.sqlite is refused, never recreated. Case 5: a request id is never a path.
Case 6: owners and notes are printable text and are printed escaped (hypothesis). Case 7/8: flag errors are
found before any request changes. Case 9: a mistyped --ledger, file modes under umask 0, a full disk.
Case 10 (ledger CLI): ids beyond int64, 1e20, uint64, binary files, ragged ids, huge deadlines.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import os
import sqlite3
import stat

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import obliviate as ob
from obliviate.errors import InvalidInputError
from obliviate.exact import SISAEnsemble
from obliviate.ledger import FAILED, RECEIVED, CorruptLedgerError, Ledger, SisaTarget, apply
from obliviate.ledger.store import LedgerDiskFullError, LedgerNotFoundError


@pytest.fixture
def data_file(tmp_path, owned_data):
    path = tmp_path / "owned.npz"
    np.savez(path, X=owned_data.X, y=owned_data.y, ids=owned_data.ids, owners=owned_data.owners.astype(str))
    return path


def _statuses(folder) -> dict[str, str]:
    with Ledger(folder) as book:
        return {r.request_id: r.status for r in book.requests()}


# ---------------------------------------------------------------- case 2: an empty ledger file is never recreated
def test_an_empty_or_foreign_ledger_file_is_refused_and_never_recreated(tmp_path, cli):
    folder = tmp_path / "ledger"
    with Ledger(folder, create=True) as book:
        book.add(ob.ForgetRequest(owners="alice"))
    db = folder / "ledger.sqlite"
    for leftover in (folder / "ledger.sqlite-wal", folder / "ledger.sqlite-shm"):
        leftover.unlink(missing_ok=True)
    db.write_bytes(b"")  # the 0-byte file of the report
    for create in (False, True):
        with pytest.raises(CorruptLedgerError, match="Restore it from a backup") as info:
            Ledger(folder, create=create)
        assert str(db) in str(info.value) and "empty" in str(info.value)
    for args in (("status",), ("request", "list"), ("request", "add", "--owner", "bob"), ("ledger", "init")):
        out = cli(*args)
        assert out.returncode == 2 and "ledger.sqlite" in out.stderr and "backup" in out.stderr, (args, out)
    assert db.stat().st_size == 0  # still the evidence, not a fresh empty ledger

    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / "ledger.sqlite").execute("CREATE TABLE photos(x)").connection.commit()
    with pytest.raises(CorruptLedgerError, match="not an obliviate ledger"):
        Ledger(other, create=True)


def test_a_deleted_ledger_database_is_not_silently_replaced_where_a_ledger_left_its_log_or_certificates(
    tmp_path, cli, sisa_folder, owned_data
):
    """Deleting ledger.sqlite (or restoring without it) must not let the next `request add` start over there."""
    folder = tmp_path / "ledger"
    with Ledger(folder, create=True) as book:
        book.add(ob.ForgetRequest(owners="writer-003"))
        apply(book, SisaTarget(sisa_folder), owned_data)
    (folder / "ledger.sqlite").unlink()
    for args in (("request", "add", "--owner", "bob"), ("ledger", "init")):
        out = cli(*args)
        assert out.returncode == 2 and "missing" in out.stderr and "certificates" in out.stderr, (args, out)
    assert not (folder / "ledger.sqlite").exists()

    stale = tmp_path / "stale"  # a crash left the log; the database was then lost
    with Ledger(stale, create=True) as book:
        book._db.execute("PRAGMA wal_autocheckpoint=0")
        book.add(ob.ForgetRequest(owners="alice"))
        wal = (stale / "ledger.sqlite-wal").read_bytes()
    (stale / "ledger.sqlite").unlink()
    (stale / "ledger.sqlite-wal").write_bytes(wal)
    with pytest.raises(CorruptLedgerError, match="write-ahead log"):
        Ledger(stale, create=True)
    assert not (stale / "ledger.sqlite").exists()


def test_a_ledger_whose_creation_lost_pages_is_never_put_in_place(tmp_path, monkeypatch):
    """On a full disk a database's last pages can be lost without an error (WAL checkpoint at close);
    creation reads the new file back and puts it in place only when whole."""
    store = importlib.import_module("obliviate.ledger.store")
    real_connect = sqlite3.connect

    class LosesPages:
        def __init__(self, path, *args, **kwargs):
            self._path, self._db = path, real_connect(path, *args, **kwargs)

        def execute(self, *args):
            return self._db.execute(*args)

        def close(self):
            self._db.close()
            for part in (f"{self._path}-wal", str(self._path)):  # what the full disk kept: the first two pages
                if os.path.exists(part):
                    os.truncate(part, 0 if part.endswith("-wal") else min(os.path.getsize(part), 8192))

    def connect(path, *args, **kwargs):
        if str(path).endswith(".new"):
            return LosesPages(path, *args, **kwargs)
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(store.sqlite3, "connect", connect)
    folder = tmp_path / "ledger"
    with pytest.raises((CorruptLedgerError, LedgerDiskFullError)):
        Ledger(folder, create=True)
    monkeypatch.setattr(store.sqlite3, "connect", real_connect)
    assert not (folder / "ledger.sqlite").exists() and not list(folder.glob(".ledger.sqlite.*"))
    with Ledger(folder, create=True) as book:  # nothing half-made stands in the way
        assert book.created and book.add(ob.ForgetRequest(owners="alice"))[1]


# ---------------------------------------------------------------- case 5: path traversal through a request id
def test_a_request_id_is_never_a_path(tmp_path, sisa_folder, owned_data):
    for evil in ("../../X", "/etc/passwd", "a/b", "..", "x\x1b[2J"):
        with pytest.raises(InvalidInputError, match="request id"):
            ob.ForgetRequest(ids=owned_data.ids[:1], request_id=evil)
    folder = tmp_path / "deep" / "ledger"
    with Ledger(folder, create=True) as book:
        with pytest.raises(InvalidInputError, match="req-<hex>"):
            book.add(ob.ForgetRequest(ids=owned_data.ids[:1], request_id="ticket-42"))
        forced = ob.ForgetRequest(ids=owned_data.ids[:1])
        object.__setattr__(forced, "request_id", "../../X")  # bypassing the constructor's check
        with pytest.raises(InvalidInputError, match="req-<hex>"):
            book.add(forced)
        # a row written by an older version or by hand: apply fails it instead of writing outside the folder
        now = "2030-01-01T00:00:00+00:00"
        book._db.execute(
            "INSERT INTO requests(request_id, idem_key, ids, owners, note, received, deadline, status, updated)"
            " VALUES ('../../X', 'k', ?, '[]', '', ?, ?, 'received', ?)",
            (json.dumps([int(owned_data.ids[0])]), now, now, now),
        )
        before = sorted(p for p in tmp_path.rglob("*") if folder not in p.parents and p != folder)
        outcome = apply(book, SisaTarget(sisa_folder), owned_data)
        assert [r.request_id for r, _ in outcome.failed] == ["../../X"] and not outcome.applied
        assert book.get("../../X").status == FAILED
    after = sorted(p for p in tmp_path.rglob("*") if folder not in p.parents and p != folder)
    assert after == before  # nothing written outside the ledger folder
    assert not (tmp_path / "deep" / "X.json").exists() and not (tmp_path / "X.json").exists()


# ---------------------------------------------------------------- case 6: markup and escape sequences
@pytest.mark.parametrize("text", ["[/]", "[bold red]x[/]", "[link=file:///etc]y", "a\\", "[", "][", ":smile: :+1:"])
def test_markup_in_owner_or_note_is_stored_and_printed_literally(cli, text):
    added = cli("request", "add", f"--owner={text}", f"--note={text}")
    assert added.returncode == 0, added
    request_id = added.stdout.split()[1]
    listing = cli("request", "list")
    assert listing.returncode == 0 and request_id in listing.stdout
    shown = cli("request", "show", request_id)
    assert shown.returncode == 0 and f"note: {text}" in shown.stdout and repr(text) in shown.stdout
    assert cli("status").returncode == 0


@pytest.mark.parametrize("text", ["\x1b[31mred", "a\nb", "bell\x07", "\u202eevil", "tab\there", "x" * 2000])
def test_control_characters_in_owner_or_note_are_refused_before_filing(cli, tmp_path, text):
    for flag in ("--owner", "--note"):
        args = ("request", "add", flag, text) + (("--owner", "bob") if flag == "--note" else ())
        out = cli(*args)
        assert out.returncode == 2 and ("control character" in out.stderr or "characters long" in out.stderr)
        assert "\x1b" not in out.stderr and "\x07" not in out.stderr
    assert not (tmp_path / "ledger").exists()  # refused before the ledger was created


def test_escape_sequences_already_stored_never_reach_the_terminal(cli, tmp_path):
    cli("request", "add", "--owner", "alice")
    with Ledger(tmp_path / "ledger") as book:  # as an older version could have stored it
        book._db.execute("UPDATE requests SET note = ?, owners = ?", ("\x1b]0;pwned\x07\x1b[2J", '["\\u001b[31mmallory"]'))
        (request_id,) = [r.request_id for r in book.requests()]
    for args in (("request", "list"), ("request", "show", request_id), ("status",)):
        out = cli(*args)
        assert out.returncode == 0 and "\x1b" not in out.stdout and "\x07" not in out.stdout, args
    assert "\\x1b[31mmallory" in cli("request", "show", request_id).stdout


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(owner=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30), note=st.text(max_size=30))
def test_any_owner_or_note_is_either_refused_or_shown_verbatim(cli, owner, note):
    key = "k-" + hashlib.sha256(f"{owner}\0{note}".encode()).hexdigest()[:16]
    out = cli("request", "add", f"--owner={owner}", f"--note={note}", "--key", key)
    if not (owner.strip() and owner.isprintable() and note.isprintable()):
        assert out.returncode == 2 and "Traceback" not in out.stderr
        return
    assert out.returncode == 0, out
    request_id = out.stdout.split()[1]
    shown = cli("request", "show", request_id)
    assert shown.returncode == 0 and repr(owner) in shown.stdout
    assert not note or f"note: {note}" in shown.stdout
    assert cli("request", "list").returncode == 0


# ---------------------------------------------------------------- case 7/8: flag errors before any state change
@pytest.mark.parametrize(
    "flags, message",
    [
        (("--backend", "bogus"), "unknown backend 'bogus'"),
        (("--address", "10.0.0.1:6379"), "--address is for the ray backend"),
        (("--seed", "-1", "--test", "digits"), "--seed must be a whole number"),
        (("--seed", str(2**40)), "--seed must be a whole number"),
        (("--test", "TESTFILE"), "features of shape"),
        (("--test", "LABELFILE"), "labels outside"),
    ],
)
def test_a_flag_error_changes_no_request_and_no_model(cli, tmp_path, sisa_folder, data_file, owned_data, flags, message):
    np.savez(tmp_path / "wide.npz", X=np.zeros((20, 65), dtype=np.float32), y=np.zeros(20, dtype=np.int64))
    np.savez(tmp_path / "labels.npz", X=owned_data.X[:20], y=np.full(20, 10, dtype=np.int64))  # classes are 0..9
    flags = tuple({"TESTFILE": tmp_path / "wide.npz", "LABELFILE": tmp_path / "labels.npz"}.get(f, f) for f in flags)
    cli("request", "add", "--owner", "writer-003")
    before = SISAEnsemble.load(sisa_folder).model_sha256()
    out = cli("apply", "--sisa", sisa_folder, "--data", data_file, *flags)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out
    assert set(_statuses(tmp_path / "ledger").values()) == {RECEIVED}
    assert SISAEnsemble.load(sisa_folder).model_sha256() == before
    assert not (tmp_path / "ledger" / "certificates").exists()


def test_the_python_api_checks_backend_seed_and_test_split_before_scheduling(ledger, sisa_folder, owned_data):
    r, _ = ledger.add(ob.ForgetRequest(owners="writer-003"))
    wide = ob.data.from_arrays(np.zeros((10, 8), dtype=np.float32), np.zeros(10, dtype=np.int64))
    for kwargs, target in (
        ({}, SisaTarget(sisa_folder, backend="bogus")),
        ({"seed": -1, "test": owned_data}, SisaTarget(sisa_folder)),
        ({"seed": 1.5}, SisaTarget(sisa_folder)),
        ({"test": wide}, SisaTarget(sisa_folder)),
    ):
        with pytest.raises(InvalidInputError):
            apply(ledger, target, owned_data, **kwargs)
        assert ledger.get(r.request_id).status == RECEIVED and len(ledger.history(r.request_id)) == 1
    assert SISAEnsemble.load(sisa_folder).deleted_ids().size == 0


# ---------------------------------------------------------------- case 9: typo, modes, disk full
@pytest.mark.parametrize(
    "args",
    [
        ("status", "--ledger", "LEDGER"),
        ("request", "list", "--ledger", "LEDGER"),
        ("request", "show", "req-0123456789abcdef", "--ledger", "LEDGER"),
        ("request", "retry", "req-0123456789abcdef", "--ledger", "LEDGER"),
        ("apply", "--sisa", "SISA", "--ledger", "LEDGER"),
        ("verify", "c.json", "--ledger", "LEDGER"),
    ],
)
def test_a_mistyped_ledger_is_an_error_naming_it_and_creates_nothing(cli, tmp_path, sisa_folder, args):
    typo = tmp_path / "ledgr"
    args = tuple({"LEDGER": typo, "SISA": sisa_folder}.get(a, a) for a in args)
    out = cli(*args)
    assert out.returncode == 2 and f"no ledger at {typo}" in out.stderr and "ledger init" in out.stderr, out
    assert not typo.exists()
    with pytest.raises(LedgerNotFoundError, match=str(typo)):
        Ledger(typo)


def test_ledger_database_and_certificates_are_private_whatever_the_umask(tmp_path, sisa_folder, owned_data):
    old = os.umask(0)
    try:
        folder = tmp_path / "ledger"
        with Ledger(folder, create=True) as book:
            book.add(ob.ForgetRequest(owners="writer-003"))
            ((_, path, _),) = apply(book, SisaTarget(sisa_folder), owned_data).applied
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode)
                for p in (folder, folder / "ledger.sqlite", folder / "ledger.sqlite-wal", folder / "ledger.sqlite-shm")
            }
            modes["certificates"] = stat.S_IMODE((folder / "certificates").stat().st_mode)
            modes["certificate"] = stat.S_IMODE(path.stat().st_mode)
            modes["apply.lock"] = stat.S_IMODE((folder / "apply.lock").stat().st_mode)
    finally:
        os.umask(old)
    assert modes == {
        "ledger": 0o700,
        "ledger.sqlite": 0o600,
        "ledger.sqlite-wal": 0o600,
        "ledger.sqlite-shm": 0o600,
        "certificates": 0o700,
        "certificate": 0o600,
        "apply.lock": 0o600,
    }


def test_a_full_disk_is_reported_as_disk_full_and_changes_nothing(tmp_path):
    folder = tmp_path / "ledger"
    with Ledger(folder, create=True) as book:
        first, _ = book.add(ob.ForgetRequest(owners="alice"))
        pages = book._db.execute("PRAGMA page_count").fetchone()[0]
        book._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL, as on a full disk
        many = [ob.ForgetRequest(owners=f"owner-{i}", note="n" * 900) for i in range(200)]
        with pytest.raises(LedgerDiskFullError, match="Disk full") as info:
            book.add_many(many)
        assert "backup" not in str(info.value) and info.value.errno == errno.ENOSPC
        assert isinstance(info.value, OSError) and not isinstance(info.value, CorruptLedgerError)
        assert [r.request_id for r in book.requests()] == [first.request_id]  # rolled back whole
    with Ledger(folder) as book:  # and the ledger is fine afterwards
        assert book.add(ob.ForgetRequest(owners="bob"))[1]


def test_an_io_error_on_a_full_disk_is_disk_full_not_damaged(tmp_path, monkeypatch):
    """On a really full disk SQLite fails to grow -shm/-wal with an I/O error (SQLITE_IOERR_SHMSIZE), not
    SQLITE_FULL: with (almost) no free space left, that is a full disk, not a damaged ledger."""
    store = importlib.import_module("obliviate.ledger.store")
    folder = tmp_path / "ledger"
    Ledger(folder, create=True).close()
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode, error.sqlite_errorname = 4874, "SQLITE_IOERR_SHMSIZE"
    real = os.statvfs(folder)

    class Full:
        f_bavail, f_frsize = 0, real.f_frsize

    monkeypatch.setattr(store.os, "statvfs", lambda path: Full())
    typed = store._sqlite_error(error, folder / "ledger.sqlite")
    assert isinstance(typed, LedgerDiskFullError) and "Disk full" in str(typed) and "backup" not in str(typed)
    monkeypatch.setattr(store.os, "statvfs", lambda path: real)  # the same error with space left: damaged
    assert isinstance(store._sqlite_error(error, folder / "ledger.sqlite"), CorruptLedgerError)


def test_a_full_disk_while_writing_certificates_is_disk_full_and_the_rerun_writes_them(
    ledger, sisa_folder, owned_data, monkeypatch
):
    apply_module = importlib.import_module("obliviate.ledger.apply")  # the package's `apply` is the function
    r, _ = ledger.add(ob.ForgetRequest(owners="writer-005"))
    real = apply_module.write_certificate

    def full(path, cert):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(apply_module, "write_certificate", full)
    with pytest.raises(LedgerDiskFullError, match="Disk full") as info:
        apply(ledger, SisaTarget(sisa_folder), owned_data)
    assert "backup" not in str(info.value)
    assert ledger.certificate(r.request_id) is not None  # applied: the certificate is in the ledger
    monkeypatch.setattr(apply_module, "write_certificate", real)
    assert apply(ledger, SisaTarget(sisa_folder), owned_data).nothing_due
    assert (ledger.folder / "certificates" / f"{r.request_id}.json").is_file()  # re-exported


# ---------------------------------------------------------------- case 10: the ledger CLI's inputs
@pytest.mark.parametrize(
    "content, message",
    [
        ("[99999999999999999999]", "int64"),
        ("99999999999999999999", "int64"),
        ("[1e20]", ""),
        ("[18446744073709551615]", "int64"),
        (b"\x00\x01\x02\xff\xfebinary", "binary"),
        ("[[1, 2], [3]]", ""),
    ],
)
def test_bad_ids_files_are_refused_with_one_line(cli, tmp_path, content, message):
    path = tmp_path / "ids"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = cli("request", "add", "--ids", path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out
    assert not (tmp_path / "ledger").exists()


@pytest.mark.parametrize(
    "record, message",
    [
        ({"ids": [1e20]}, "request 2: ids must be integers"),
        ({"ids": [18446744073709551615]}, "request 2: ids must fit in int64"),
        ({"ids": [2**70]}, "request 2: ids must fit in int64"),
        ({"ids": [[1, 2], [3]]}, "request 2: ids must be a flat list"),
        ({"ids": [[1, 2], [3, 4]]}, "request 2: ids must be a flat list"),
        ({"ids": [1], "deadline_days": 10**9}, "request 2: deadline_days must be a whole number of days"),
        ({"owners": ["a\x1b[2Jb"]}, "request 2: owner"),
        ({"owners": {"alice": 1}}, "request 2: owners must be"),
        ({"ids": [1], "key": ["k"]}, "request 2: key must be text"),
    ],
)
def test_bad_import_records_are_refused_whole_with_their_number(cli, tmp_path, record, message):
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps({"ids": [5]}) + "\n" + json.dumps(record))
    out = cli("request", "import", path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out
    assert "\x1b" not in out.stderr
    assert not (tmp_path / "ledger").exists()  # nothing filed, not even request 1


def test_binary_import_file_and_huge_deadline_are_one_line_errors(cli, tmp_path):
    path = tmp_path / "requests.bin"
    path.write_bytes(bytes(range(256)))
    out = cli("request", "import", path)
    assert out.returncode == 2 and "binary" in out.stderr
    for days in ("1000000000", "99999999999999999999", "-1"):
        out = cli("request", "add", "--owner", "alice", "--deadline-days", days)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (days, out)
    assert not (tmp_path / "ledger").exists()
    assert cli("request", "add", "--owner", "alice", "--deadline-days", "36600").returncode == 0


@pytest.mark.parametrize("request_id", ["[/]", "[bold]x[/bold", "req-\x1b[2Jx"])
def test_error_lines_quote_user_text_literally(tmp_path, monkeypatch, capsys, request_id):
    """The CLI's one-line error (``cli.common.fail``) prints rich markup and escape sequences as inert text."""
    import sys

    from obliviate.cli import main
    from obliviate.ledger import Ledger

    Ledger(tmp_path / "ledger", create=True).close()
    monkeypatch.setattr(sys, "argv", ["obliviate", "request", "show", request_id, "--ledger", str(tmp_path / "ledger")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "\x1b" not in err and "Traceback" not in err
    assert request_id.replace("\x1b", "\\x1b") in err
