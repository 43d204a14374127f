"""``obliviate store ...`` through typer's runner (the module registers on the app when imported; the registration
line in obliviate.cli is the integrator's)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import obliviate.cli.retrieval  # noqa: F401  (registers `store`)
from obliviate.cli.common import app
from obliviate.errors import UnknownIdsError

DOCS = [
    {"text": "Lisa Stone was born in North Kimberly in 1979 and works at Sherman-Gibson.", "owner": "lisa"},
    {"text": "Update: Lisa Stone was born in North Kimberly in 1979 and works at Sherman-Gibson!"},
    {"text": "Paris is the capital of France.", "owner": "fr"},
]


def test_init_add_search_expand_delete_compact(tmp_path):
    runner = CliRunner()
    folder, docs = tmp_path / "s", tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n")
    assert runner.invoke(app, ["store", "init", str(folder), "--embedder", "hashing"]).exit_code == 0
    result = runner.invoke(app, ["store", "add", str(folder), str(docs)])
    assert result.exit_code == 0 and "ids 1..3" in result.output
    result = runner.invoke(app, ["store", "search", str(folder), "Where was Lisa Stone born?", "--k", "1"])
    assert result.exit_code == 0 and "North" in result.output
    result = runner.invoke(app, ["store", "expand", str(folder), "1"], env={"COLUMNS": "200"})
    assert "near-duplicate" in result.output and "accepts 1 more: [2]" in result.output
    result = runner.invoke(app, ["store", "delete", str(folder), "1", "--yes"])
    assert result.exit_code == 0 and "deleted 2 document(s) [1, 2]" in result.output
    result = runner.invoke(app, ["store", "search", str(folder), "Lisa Stone North Kimberly", "--mode", "keyword"])
    assert "Kimberly" not in result.output
    result = runner.invoke(app, ["store", "delete", str(folder), "1", "--no-expand"])
    assert isinstance(result.exception, UnknownIdsError)
    assert runner.invoke(app, ["store", "compact", str(folder)]).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": ""}\n')
    result = runner.invoke(app, ["store", "add", str(folder), str(bad)])
    assert result.exception is not None and "empty" in str(result.exception)


@pytest.mark.parametrize("ids", [["x"], [","]])
def test_ids_must_be_numbers(tmp_path, ids):
    runner = CliRunner()
    runner.invoke(app, ["store", "init", str(tmp_path / "s"), "--embedder", "hashing"])
    result = runner.invoke(app, ["store", "delete", str(tmp_path / "s"), *ids])
    assert result.exception is not None and "id" in str(result.exception)
