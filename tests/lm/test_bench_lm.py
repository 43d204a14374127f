"""The authors suite end to end on the small benchmark: rows, references, leaderboard, plot, CLI entry."""

from __future__ import annotations

import json

import pytest

from obliviate.bench.lm import run_authors
from obliviate.bench.results import ORACLE, ORIGINAL
from obliviate.errors import InvalidInputError, UnknownMethodError
from obliviate.lm.training import FinetuneRecipe
from obliviate.report.lm import lm_leaderboard, tofu_chart


@pytest.fixture(scope="module")
def results(tiny_lm, small_authors, lm_cache, trained_tiny_lm, tiny_retain_lm, tiny_test_recipe):
    # the target and retain models come from the session cache the two model fixtures filled
    return run_authors(
        tiny_lm, methods=["grad_diff"], splits=["forget10"], benchmark=small_authors, recipe=tiny_test_recipe,
        show_progress=False, relearn=False, cache=lm_cache,
    )


def _values(results, method):
    return {r["metric"]: r["value"] for r in results["rows"] if r["method"] == method}


def test_rows_hold_every_method_and_the_references(results):
    methods = {r["method"] for r in results["rows"]}
    assert methods == {ORIGINAL, ORACLE, "grad_diff"} and results["schema"] == "obliviate.results/1"
    assert {r["scenario"] for r in results["rows"]} == {"forget10"}
    names = set(_values(results, "grad_diff"))
    for metric in ("forget_quality", "model_utility", "forget_prob", "forget_rouge", "forget_truth_ratio", "privleak",
                   "mia_auc_min_k", "mia_auc_min_k_plus_plus", "seconds", "time_fraction", "perplexity", "degenerate_share"):
        assert metric in names
    assert results["config"]["failures"] == []


def test_references_behave_as_defined(results):
    target, retain = _values(results, ORIGINAL), _values(results, ORACLE)
    assert retain["forget_quality"] == pytest.approx(1.0)  # the KS test of a sample with itself
    assert retain["privleak"] == 0.0 and retain["time_fraction"] == 1.0
    assert target["utility_vs_target"] == pytest.approx(1.0)
    assert target["forget_prob"] > 2 * retain["forget_prob"]  # the target knows the forget authors, the oracle does not
    assert target["mia_auc_loss"] > retain["mia_auc_loss"]


def test_leaderboard_and_tofu_plot(results):
    board = lm_leaderboard(results, "forget10")
    assert [e["role"] for e in board] == ["oracle", "unlearner", "original"]
    assert board[0]["forget_quality"] == pytest.approx(1.0)
    png = tofu_chart(board)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_fail_before_training(tiny_lm, small_authors):
    kwargs = {"benchmark": small_authors, "show_progress": False, "cache": False}
    with pytest.raises(InvalidInputError, match="no author"):
        run_authors(tiny_lm, methods=["npo"], splits=["forget01"], **kwargs)
    with pytest.raises(InvalidInputError, match="references"):
        run_authors(tiny_lm, methods=["retrain"], splits=["forget10"], **kwargs)
    with pytest.raises(UnknownMethodError):
        run_authors(tiny_lm, methods=["no_such_method"], splits=["forget10"], **kwargs)
    with pytest.raises(InvalidInputError, match="method.key"):
        run_authors(tiny_lm, methods=["npo"], splits=["forget10"], settings={"beta": 1}, **kwargs)


def test_cli_entry_writes_results_and_plot(monkeypatch, small_authors, tmp_path):
    """``obliviate bench --suite authors`` calls bench_lm; here with the tiny model sized down."""
    import obliviate.bench.lm as bench_lm_module
    import obliviate.lm.training as training
    from obliviate.cli.lm import bench_lm

    monkeypatch.setattr(bench_lm_module, "tiny_benchmark", lambda seed=0: small_authors)
    monkeypatch.setattr(training, "TINY_BENCH_SIZE", {"n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 400, "max_length": 64})
    monkeypatch.setattr(training, "TINY_FINETUNE", FinetuneRecipe(epochs=3, lr=5e-3, batch_size=8, weight_decay=0.0))
    with pytest.raises(InvalidInputError, match="method.lr"):
        bench_lm(model="tiny", methods=["npo"], seeds=None, scenarios=["forget10"], settings={"lr": "1"}, out=tmp_path, progress=False)
    bench_lm(model="tiny", methods=["npo"], seeds=None, scenarios=["forget10"], settings={"npo.epochs": "1"},
             out=tmp_path, progress=False)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["suite"] == "authors" and doc["config"]["settings"] == {"npo.epochs": "1"}
    assert {r["method"] for r in doc["rows"]} == {ORIGINAL, ORACLE, "npo"}
    assert (tmp_path / "tofu_forget10.png").is_file() and (tmp_path / "results.csv").is_file()


def test_report_page_has_the_lm_leaderboard_and_says_the_privleak_convention(results, tmp_path):
    from obliviate.report import write_report

    page = write_report(results, tmp_path).read_text()
    assert "Forget quality against model utility" in page and "grad_diff" in page
    assert "What the columns mean" in page and "A = 1 - AUC" in page
