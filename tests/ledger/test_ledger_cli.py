"""`obliviate request add/list/show`, `apply`, `status`, `verify`: the add -> apply -> verify walk-through."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest


@pytest.fixture
def data_file(tmp_path, owned_data):
    """``owned_data`` as the .npz file `--data` reads (X, y, ids, owners)."""
    path = tmp_path / "owned.npz"
    np.savez(path, X=owned_data.X, y=owned_data.y, ids=owned_data.ids, owners=owned_data.owners.astype(str))
    return path


def test_add_apply_verify_walkthrough(cli, tmp_path, sisa_folder, data_file, owned_data):
    first = cli("request", "add", "--owner", "writer-003", "--note", "ticket 17")
    assert first.returncode == 0 and "filed req-" in first.stdout
    again = cli("request", "add", "--owner", "writer-003")
    assert "already filed" in again.stdout and first.stdout.split()[1] in again.stdout
    late_ids, bad_ids = tmp_path / "late.txt", tmp_path / "bad.json"
    late_ids.write_text(" ".join(map(str, owned_data.ids[:3])))
    bad_ids.write_text(json.dumps([int(owned_data.ids.max()) + 99]))
    assert cli("request", "add", "--ids", late_ids, "--deadline-days", "0").returncode == 0
    assert cli("request", "add", "--ids", bad_ids).returncode == 0
    listing = cli("request", "list", "--overdue")
    assert "OVERDUE" in listing.stdout and "1 request(s) OVERDUE" in listing.stdout
    status = cli("status")
    assert "received" in status.stdout and "1 request(s) OVERDUE" in status.stdout and "next deadline" in status.stdout

    applied = cli("apply", "--sisa", sisa_folder, "--data", data_file)
    assert applied.returncode == 2  # the unknown-id request failed, the others were applied
    assert "sisa (exact)" in applied.stdout and "OVERDUE (applied late)" in applied.stdout
    assert "failed" in applied.stdout and "not in dataset" in applied.stdout
    assert "1 request(s) failed" in applied.stderr
    certificates = sorted((tmp_path / "ledger" / "certificates").glob("*.json"))
    assert len(certificates) == 2

    verified = cli("verify", certificates[0], "--sisa", sisa_folder)
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count("PASS") == 4 and "marked verified" in verified.stdout
    cert = json.loads(certificates[1].read_text())
    cert["removed_ids"] = cert["removed_ids"][1:]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(cert))
    rejected = cli("verify", forged, "--sisa", sisa_folder)
    assert rejected.returncode == 1 and "FAIL signature" in rejected.stdout and "verification FAILED" in rejected.stdout

    assert "nothing due" in cli("apply", "--sisa", sisa_folder, "--data", data_file).stdout
    request_id = certificates[0].stem
    shown = cli("request", "show", request_id)
    assert all(step in shown.stdout for step in ("received", "scheduled", "applied", "verified", "audit trail"))
    final = cli("status")
    assert "no open request" in final.stdout


def test_apply_through_a_model_file_and_retry_a_failed_request(cli, tmp_path, model_file, data_file, owned_data):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, owned_data.ids[:4])))
    cli("request", "add", "--ids", ids)
    out = cli("apply", "--model", model_file, "--data", data_file, "--method", "finetune", "--set", "epochs=1")
    assert out.returncode == 0 and "finetune (empirical)" in out.stdout
    cert = next((tmp_path / "ledger" / "certificates").glob("*.json"))
    assert cli("verify", cert, "--model", model_file).returncode == 0
    assert "model not checked" in cli("verify", cert).stdout  # the signature alone


@pytest.mark.parametrize(
    "args, message",
    [
        (("request", "add"), "name what to delete"),
        (("apply", "--data", "digits"), "give exactly one target"),
        (("verify", "missing.json"), "no certificate at"),
        (("request", "list", "--status", "done"), "unknown status 'done'"),
        (("request", "show", "req-unknown"), "no request 'req-unknown'"),
        (("request", "retry", "req-unknown"), "no request 'req-unknown'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, message):
    assert cli("ledger", "init").returncode == 0
    out = cli(*args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_a_corrupt_sisa_state_is_a_typed_error_with_the_fix(cli, sisa_folder, data_file):
    (sisa_folder / "state.json").write_text("{")
    cli("request", "add", "--owner", "writer-001")
    out = cli("apply", "--sisa", sisa_folder, "--data", data_file)
    assert out.returncode == 2 and "state.json" in out.stderr


def test_import_files_many_requests_and_verify_marks_them_in_one_call(
    cli, tmp_path, sisa_folder, data_file, owned_data
):
    lines = [json.dumps({"ids": [int(i)], "note": f"ticket {k}"}) for k, i in enumerate(owned_data.ids[:5])]
    lines.append(json.dumps({"owners": "writer-002", "key": "dsar-9", "deadline_days": 7}))
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(lines + lines[:1]))  # the first one twice: filed once
    out = cli("request", "import", requests)
    assert out.returncode == 0 and "filed 6 request(s); 1 already filed" in out.stdout
    assert cli("apply", "--sisa", sisa_folder, "--data", data_file).returncode == 0
    certificates = sorted((tmp_path / "ledger" / "certificates").glob("*.json"))
    out = cli("verify", *certificates, "--sisa", sisa_folder)
    assert out.returncode == 0 and out.stdout.count("marked verified") == 6
    assert re.search(r"verified\s*│\s*6\s*│", cli("status").stdout)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ids": [1], "deadline": 3}')
    out = cli("request", "import", bad)
    assert out.returncode == 2 and "request 1: expected an object" in out.stderr
