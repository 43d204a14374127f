"""The command line: one-line errors with exit code 2, train -> unlearn round trip, methods list."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch


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


def test_usage_errors_exit_2_without_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from obliviate.cli import main; main()", "bench", "--bogus"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr and "bogus" in out.stderr


def _class_ids(label: int):
    from obliviate.data import digits

    train = digits().split(test_size=0.25, seed=0)[0]
    return train, train.ids_of_class(label)


def test_a_later_request_does_not_bring_back_what_an_earlier_one_removed(run_cli, tmp_path):
    from obliviate.evaluation import accuracy
    from obliviate.storage import load_model, read_metadata

    model = tmp_path / "model.safetensors"
    assert run_cli("train", "--out", str(model), "--epochs", "10").returncode == 0
    train, class3 = _class_ids(3)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("\n".join(map(str, class3)))
    other = [i for i in train.ids_of_class(5)[:3]]
    second.write_text("\n".join(map(str, other)))
    step1, step2 = tmp_path / "u1.safetensors", tmp_path / "u2.safetensors"
    out = run_cli("unlearn", str(model), "--ids", str(first), "--method", "reset_layers", "--out", str(step1))
    assert out.returncode == 0, out.stderr
    out = run_cli("unlearn", str(step1), "--ids", str(second), "--method", "finetune", "--out", str(step2))
    assert out.returncode == 0, out.stderr
    forgotten = train.subset(class3)
    assert accuracy(load_model(step2), forgotten) < 0.05  # fine-tuning on the retain set did not relearn class 3
    recorded = set(__import__("json").loads(read_metadata(step2)["forgotten_ids"]))
    assert recorded == set(class3.tolist()) | set(int(i) for i in other)
    again = run_cli("unlearn", str(step2), "--ids", str(second), "--out", str(tmp_path / "u3.safetensors"))
    assert again.returncode == 2 and "already forgotten" in again.stderr


def test_unlearn_refuses_other_data_than_the_model_was_trained_on(run_cli, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    npz = tmp_path / "own.npz"
    np.savez(npz, X=rng.normal(size=(60, 64)).astype(np.float32), y=rng.integers(0, 10, 60))
    model = tmp_path / "own.safetensors"
    assert run_cli("train", "--data", str(npz), "--out", str(model), "--epochs", "1").returncode == 0
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2\n")
    out = run_cli("unlearn", str(model), "--ids", str(ids), "--data", "digits", "--out", str(tmp_path / "u.safetensors"))
    assert out.returncode == 2 and "fingerprint" in out.stderr
    ok = run_cli("unlearn", str(model), "--ids", str(ids), "--out", str(tmp_path / "u.safetensors"))  # data from header
    assert ok.returncode == 0, ok.stderr


def test_unlearn_refuses_the_same_examples_with_other_owners(run_cli, tmp_path):
    """Issue 10 case 1 through the CLI: same X, y and ids but owners moved between examples is other data."""
    import numpy as np

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 8)).astype(np.float32), rng.integers(0, 3, 40)
    owners = np.array([f"p{i % 5}" for i in range(40)])
    real, forged = tmp_path / "real.npz", tmp_path / "forged.npz"
    np.savez(real, X=X, y=y, owners=owners)
    np.savez(forged, X=X, y=y, owners=rng.permutation(owners))
    model = tmp_path / "m.safetensors"
    assert run_cli("train", "--data", str(real), "--out", str(model), "--epochs", "1").returncode == 0
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2\n")
    out = run_cli("unlearn", str(model), "--ids", str(ids), "--data", str(forged), "--out", str(tmp_path / "u.safetensors"))
    assert out.returncode == 2 and "fingerprint" in out.stderr and "owners" in out.stderr
    assert not (tmp_path / "u.safetensors").exists()


def test_train_refuses_a_symlinked_out_before_training(run_cli, tmp_path):
    real = tmp_path / "keep.safetensors"
    real.write_bytes(b"keep")
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    out = run_cli("train", "--epochs", "1", "--out", str(link))
    assert out.returncode == 2 and "symbolic link" in out.stderr and "trained" not in out.stdout
    assert link.is_symlink() and real.read_bytes() == b"keep"


def test_bench_dispatches_the_knowledge_suite(run_cli, tmp_path):
    """``--suite knowledge`` reaches the knowledge runner (its own input check answers before any model loads)."""
    out = run_cli("bench", "--suite", "knowledge", "--scenario", "forget-bogus", "--out", str(tmp_path))
    assert out.returncode == 2
    assert "known domains: elements" in out.stderr and "Traceback" not in out.stderr


def test_model_flag_is_refused_for_classifier_suites(run_cli, tmp_path):
    out = run_cli("bench", "--suite", "digits", "--model", "smollm2", "--out", str(tmp_path))
    assert out.returncode == 2
    assert "language-model suites (authors, knowledge)" in out.stderr
