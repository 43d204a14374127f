"""The bench runner: results rows, the NeurIPS rows over seeds, files written, input checks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from obliviate.bench import SCHEMA, get_suite, read_results, run_suite, write_results
from obliviate.errors import InvalidInputError, UnknownConfigKeyError, UnknownMethodError

PER_SEED = {"retain_accuracy", "test_accuracy", "forget_accuracy", "mia_efficacy", "seconds", "avg_gap"}


@pytest.fixture(scope="module")
def small_suite():
    suite = get_suite("digits")
    return replace(suite, recipe=replace(suite.recipe, epochs=8), seeds=6)


@pytest.fixture(scope="module")
def results(small_suite):
    return run_suite(small_suite, methods=["finetune"], relearn=False, show_progress=False)


def test_rows_cover_every_method_scenario_seed_and_metric(results):
    assert results["schema"] == SCHEMA and results["suite"] == "digits"
    assert set(results["versions"]) >= {"obliviate", "torch"}
    rows = results["rows"]
    for scenario in ("random-10pct", "class-forget"):
        for method in ("original", "retrain", "finetune"):
            for seed in range(6):
                got = {r["metric"] for r in rows if (r["scenario"], r["method"], r["seed"]) == (scenario, method, seed)}
                assert PER_SEED <= got, (scenario, method, seed, PER_SEED - got)
            overall = {r["metric"] for r in rows if (r["scenario"], r["method"]) == (scenario, method) and r["seed"] is None}
            expected = {"nips_forget_score", "nips_score"}
            if method != "retrain":  # U-LiRA splits 6 seeds into 3 shadows and 3 targets; the oracle needs 8
                expected |= {"ulira_accuracy", "ulira_auc"}
            assert overall == expected, (scenario, method)
    for r in rows:
        if r["metric"].endswith("accuracy") or r["metric"] == "mia_efficacy":
            assert 0.0 <= r["value"] <= 1.0


def _value(results, scenario, method, metric, seed=0):
    (row,) = [
        r for r in results["rows"] if (r["scenario"], r["method"], r["metric"], r["seed"]) == (scenario, method, metric, seed)
    ]
    return row["value"]


def test_oracle_has_zero_gap_and_class_forget_removes_the_class(results):
    for seed in range(6):
        assert _value(results, "class-forget", "retrain", "avg_gap", seed) == pytest.approx(0.0)
        assert _value(results, "class-forget", "retrain", "forget_accuracy", seed) < 0.05
        assert _value(results, "class-forget", "original", "forget_accuracy", seed) > 0.6  # 8 epochs: short of converged


def test_finetune_is_cheaper_than_retraining(results):
    fine = sum(_value(results, "random-10pct", "finetune", "seconds", s) for s in range(6))
    full = sum(_value(results, "random-10pct", "retrain", "seconds", s) for s in range(6))
    assert fine < full  # 5 epochs against 8: a cost ratio, not a timing threshold


def test_original_scores_worse_than_oracle_halves_in_class_forget(results):
    original = _value(results, "class-forget", "original", "nips_forget_score", None)
    oracle = _value(results, "class-forget", "retrain", "nips_forget_score", None)
    assert oracle > original


def test_written_files_round_trip(results, tmp_path):
    json_path, csv_path = write_results(results, tmp_path)
    assert read_results(json_path)["rows"] == json.loads(json.dumps(results["rows"]))
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "scenario,method,seed,metric,value"
    assert len(lines) == len(results["rows"]) + 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_read_results_rejects_other_schema(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"schema": "something/9", "rows": []}))
    with pytest.raises(InvalidInputError, match="schema"):
        read_results(bad)


def test_bad_input_is_rejected_before_any_training(small_suite):
    with pytest.raises(UnknownMethodError, match="Known methods"):
        run_suite(small_suite, methods=["no_such_method"], show_progress=False)
    with pytest.raises(UnknownConfigKeyError):
        run_suite(small_suite, methods=["finetune"], settings={"finetune.nope": "1"}, show_progress=False)
    with pytest.raises(InvalidInputError, match="scenario"):
        run_suite(small_suite, methods=["finetune"], scenarios=["nope"], show_progress=False)
    with pytest.raises(InvalidInputError, match="seeds"):
        run_suite(small_suite, methods=["finetune"], seeds=1, show_progress=False)
    with pytest.raises(InvalidInputError, match="unknown suite"):
        get_suite("imagenet")


def test_nan_free(results):
    for r in results["rows"]:
        assert r["value"] is None or math.isfinite(r["value"])
