"""The command line: one-line errors with exit code 2, train -> unlearn round trip, methods list."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run the CLI's entry point in-process: returns (exit code, stdout, stderr)."""
    from obliviate.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "argv", ["obliviate", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def test_console_script_error_is_one_line_without_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from obliviate.cli import main; main()", "bench", "--methods", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert "Unknown unlearning method 'nope'" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3  # one message (rich may wrap it)


def test_methods_lists_guarantees(run_cli):
    out = run_cli("methods")
    assert out.returncode == 0, out.stderr
    assert "finetune" in out.stdout and "retrain" in out.stdout and "exact" in out.stdout


def test_unknown_method_is_one_line_exit_2(run_cli, tmp_path):
    out = run_cli("bench", "--methods", "nope", "--out", str(tmp_path))
    assert out.returncode == 2
    assert "Unknown unlearning method 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_set_syntax_exit_2(run_cli, tmp_path):
    out = run_cli("bench", "--set", "alpha", "--out", str(tmp_path))
    assert out.returncode == 2 and "method.key=value" in out.stderr


def test_train_then_unlearn_round_trip(run_cli, tmp_path):
    model = tmp_path / "model.safetensors"
    out = run_cli("train", "--out", str(model), "--epochs", "5")
    assert out.returncode == 0, out.stderr
    assert model.exists()
    ids = tmp_path / "forget.txt"
    from obliviate.data import digits

    train_ids = digits().split(test_size=0.25, seed=0)[0].ids
    ids.write_text("\n".join(str(i) for i in train_ids[:200:7]))
    unlearned = tmp_path / "unlearned.safetensors"
    out = run_cli("unlearn", str(model), "--ids", str(ids), "--method", "finetune", "--set", "epochs=2", "--out", str(unlearned))
    assert out.returncode == 0, out.stderr
    assert "forgot" in out.stdout and unlearned.exists()

    from obliviate.storage import load_model, read_metadata

    loaded = load_model(unlearned)
    assert loaded(torch.zeros(1, 64)).shape == (1, 10)
    assert read_metadata(unlearned)["method"] == "finetune"


def test_unlearn_unknown_ids_names_them(run_cli, tmp_path):
    model = tmp_path / "model.safetensors"
    assert run_cli("train", "--out", str(model), "--epochs", "1").returncode == 0
    ids = tmp_path / "forget.txt"
    ids.write_text("5\n999999\n")
    out = run_cli("unlearn", str(model), "--ids", str(ids), "--out", str(tmp_path / "u.safetensors"))
    assert out.returncode == 2
    assert "999999" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "u.safetensors").exists()


@pytest.mark.parametrize("content", ["1, 2, x", "[1, 2.5]"])
def test_unlearn_bad_ids_file(run_cli, tmp_path, content):
    model = tmp_path / "model.safetensors"
    assert run_cli("train", "--out", str(model), "--epochs", "1").returncode == 0
    ids = tmp_path / "forget.txt"
    ids.write_text(content)
    out = run_cli("unlearn", str(model), "--ids", str(ids), "--out", str(tmp_path / "u.safetensors"))
    assert out.returncode == 2 and "ids" in out.stderr
