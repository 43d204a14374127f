"""The report: leaderboard numbers computed by hand, the HTML page, and bad input."""

from __future__ import annotations

import base64
import math
import re

import pytest

from obliviate.errors import InvalidInputError
from obliviate.report import leaderboard, render_report, write_report
from obliviate.report.html import leaderboard_table

ACC = ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy")

# Per scenario, method and metric: the values of seeds 0 and 1.
SEEDED = {
    "random-10pct": {
        "retrain": {
            "forget_accuracy": [0.70, 0.80], "retain_accuracy": [0.99, 0.97], "test_accuracy": [0.95, 0.93],
            "mia_efficacy": [0.30, 0.40], "avg_gap": [0.0, 0.0], "seconds": [10.0, 30.0],
        },
        "scrub": {
            "forget_accuracy": [0.80, 0.90], "retain_accuracy": [0.96, 0.96], "test_accuracy": [0.94, 0.92],
            "mia_efficacy": [0.25, 0.35], "avg_gap": [5.0, 7.0], "seconds": [1.0, 3.0],
        },
        "finetune": {
            "forget_accuracy": [0.75, 0.75], "retain_accuracy": [0.98, 0.98], "test_accuracy": [0.94, 0.94],
            "mia_efficacy": [0.33, 0.33], "avg_gap": [2.0, 4.0], "seconds": [4.0, 4.0],
        },
        "original": {  # closest to the oracle here, yet always listed last
            "forget_accuracy": [0.99, 0.99], "retain_accuracy": [0.99, 0.99], "test_accuracy": [0.95, 0.95],
            "mia_efficacy": [0.05, 0.05], "avg_gap": [1.0, 1.0], "seconds": [0.0, 0.0],
        },
    },
    "class-forget": {
        "retrain": {
            "forget_accuracy": [0.0, 0.02], "retain_accuracy": [1.0, 1.0], "test_accuracy": [0.88, 0.88],
            "mia_efficacy": [1.0, 0.98], "avg_gap": [0.0, 0.0], "seconds": [20.0, 20.0],
        },
        "scrub": {
            "forget_accuracy": [0.10, 0.20], "retain_accuracy": [0.95, 0.97], "test_accuracy": [0.85, 0.85],
            "mia_efficacy": [0.90, 0.80], "avg_gap": [8.0, 10.0], "seconds": [2.0, 2.0],
        },
        "finetune": {
            "forget_accuracy": [0.30, 0.30], "retain_accuracy": [0.99, 0.99], "test_accuracy": [0.86, 0.86],
            "mia_efficacy": [0.70, 0.70], "avg_gap": [12.0, 14.0], "seconds": [5.0, 5.0],
        },
        "original": {
            "forget_accuracy": [1.0, 1.0], "retain_accuracy": [1.0, 1.0], "test_accuracy": [0.975, 0.975],
            "mia_efficacy": [0.01, 0.01], "avg_gap": [50.0, 50.0], "seconds": [0.0, 0.0],
        },
    },
}
# Over all seeds (seed null): (nips_forget_score, nips_score).
NIPS = {"retrain": (0.95, 0.90), "scrub": (0.5, 0.4), "finetune": (0.35, 0.3), "original": (0.02, 0.01)}


def row(scenario, method, seed, metric, value):
    return {"scenario": scenario, "method": method, "seed": seed, "metric": metric, "value": value}


def make_results() -> dict:
    rows = []
    for scenario, methods in SEEDED.items():
        for method, metrics in methods.items():
            for metric, values in metrics.items():
                for seed, value in enumerate(values):
                    rows.append(row(scenario, method, seed, metric, value))
                    if metric in ACC:  # evaluate() repeats the oracle's value on every row
                        oracle = SEEDED[scenario]["retrain"][metric][seed]
                        rows.append(row(scenario, method, seed, f"oracle_{metric}", oracle))
            rows.append(row(scenario, method, 0, "loss_auc", 0.6))
            rows.append(row(scenario, method, 1, "loss_auc", None))
            forget_score, score = NIPS[method]
            rows.append(row(scenario, method, None, "nips_forget_score", forget_score))
            rows.append(row(scenario, method, None, "nips_score", score))
    return {
        "schema": "obliviate.results/1",
        "suite": "digits",
        "created": "2026-11-25T19:30:00+00:00",
        "versions": {"obliviate": "0.1.0", "torch": "2.13.0"},
        "config": {
            "recipe": {"model": "mlp", "epochs": 30},
            "seeds": 2,
            "scenarios": {"random-10pct": "a random 10% of the examples", "class-forget": "every example of class 3"},
            "failures": [{"scenario": "class-forget", "method": "ssd", "seed": 1, "error": "diverged <at> step 3"}],
        },
        "rows": rows,
    }


@pytest.fixture
def results():
    return make_results()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One report written from the shared document (rendering takes about a second): (path, page)."""
    out = tmp_path_factory.mktemp("report") / "out"
    results = make_results()
    path = write_report(results, out)
    assert results == make_results()  # the input document is not changed
    return path, path.read_text(encoding="utf-8")


def by_method(board):
    return {e["method"]: e for e in board}


# ---------------------------------------------------------------- the leaderboard as data


def test_means_stds_and_gaps_match_hand_computation(results):
    scrub = by_method(leaderboard(results, "random-10pct"))["scrub"]
    assert scrub["seeds"] == 2
    assert scrub["forget_accuracy"] == pytest.approx(0.85)
    assert scrub["forget_accuracy_std"] == pytest.approx(math.sqrt(0.005))  # sample std of 0.80, 0.90
    # gaps in percentage points: method mean - oracle mean
    assert scrub["forget_accuracy_gap"] == pytest.approx(10.0)  # 85 - 75
    assert scrub["retain_accuracy_gap"] == pytest.approx(-2.0)  # 96 - 98
    assert scrub["test_accuracy_gap"] == pytest.approx(-1.0)  # 93 - 94
    assert scrub["mia_efficacy_gap"] == pytest.approx(-5.0)  # 30 - 35
    assert scrub["avg_gap"] == pytest.approx(6.0)
    assert scrub["avg_gap_std"] == pytest.approx(math.sqrt(2.0))
    assert "avg_gap_gap" not in scrub and "seconds_gap" not in scrub
    assert scrub["time_fraction"] == pytest.approx(0.1)  # 2 s / 20 s
    assert scrub["nips_score"] == pytest.approx(0.4) and scrub["nips_score_std"] is None
    assert scrub["nips_score_gap"] == pytest.approx(0.4 - 0.9)  # not a fraction metric: raw units
    assert scrub["nips_forget_score"] == pytest.approx(0.5)


def test_scenarios_are_kept_apart(results):
    scrub = by_method(leaderboard(results, "class-forget"))["scrub"]
    assert scrub["forget_accuracy"] == pytest.approx(0.15)
    assert scrub["forget_accuracy_gap"] == pytest.approx(14.0)  # 15 - 1
    assert scrub["mia_efficacy_gap"] == pytest.approx(-14.0)  # 85 - 99
    assert scrub["time_fraction"] == pytest.approx(0.1)


def test_oracle_is_the_zero_reference(results):
    oracle = leaderboard(results, "random-10pct")[0]
    assert oracle["method"] == "retrain" and oracle["role"] == "oracle" and oracle["rank"] is None
    assert all(oracle[f"{m}_gap"] == 0.0 for m in ACC)
    assert oracle["time_fraction"] == pytest.approx(1.0)


def test_order_oracle_first_then_by_avg_gap_and_original_last(results):
    board = leaderboard(results, "random-10pct")
    # the original has the smallest Avg. Gap here but is a reference, not a competitor
    assert [e["method"] for e in board] == ["retrain", "finetune", "scrub", "original"]
    assert [e["rank"] for e in board] == [None, 1, 2, None]
    assert [e["role"] for e in board] == ["oracle", "unlearner", "unlearner", "original"]
    assert [e["method"] for e in leaderboard(results, "class-forget")] == ["retrain", "scrub", "finetune", "original"]


def test_null_values_are_left_out_and_oracle_copies_dropped(results):
    scrub = by_method(leaderboard(results, "random-10pct"))["scrub"]
    assert scrub["loss_auc"] == pytest.approx(0.6) and scrub["loss_auc_std"] is None  # seed 1 is null
    assert not any(key.startswith("oracle_") for key in scrub)
    original = by_method(leaderboard(results, "random-10pct"))["original"]
    assert original["time_fraction"] == 0.0


def test_leaderboard_does_not_change_its_input(results):
    leaderboard(results, "random-10pct")
    assert results == make_results()


# ---------------------------------------------------------------- the HTML page


def test_report_is_self_contained_and_names_every_method(written):
    path, page = written
    assert path.name == "report.html" and path.parent.name == "out"
    for name in ("retrain", "scrub", "finetune", "original", "random-10pct", "class-forget", "How to read this report"):
        assert name in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 6  # per scenario: gap bars, trade-off, NeurIPS scores
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'(?:src|href)="(?!data:image/png;base64,|#)', page)  # no external assets or links
    assert "<script" not in page
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # the atomic write left no temp file


def test_report_shows_failures_and_escapes_text(results, tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    for row in results["rows"]:
        if row["method"] == "scrub":
            row["method"] = evil
    results["suite"] = "digits & <co>"
    page = write_report(results, tmp_path).read_text(encoding="utf-8")
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "digits &amp; &lt;co&gt;" in page
    assert "diverged &lt;at&gt; step 3" in page  # the failed run of the config is reported, escaped


def test_best_unlearner_is_highlighted_never_a_reference(results):
    table = leaderboard_table(leaderboard(results, "random-10pct"))
    rows = {m: r for r in re.findall(r"<tr class=.*?</tr>", table) for m in ("finetune", "scrub", "original", "retrain")
            if f'<span class="name">{m}</span>' in r}
    cells = {m: re.findall(r"<td[^>]*>", r) for m, r in rows.items()}
    # columns: rank, method, Avg. Gap, forget, retain, test, MIA, ...
    assert cells["finetune"][2] == '<td class="best">'  # Avg. Gap 3 < 6
    assert cells["scrub"][2] == "<td>"
    assert cells["finetune"][3] == '<td class="best">'  # forget accuracy gap 0 beats +10
    assert "best" not in rows["original"] and "best" not in rows["retrain"]


def test_report_is_deterministic(written):
    assert render_report(make_results()) == written[1]


# ---------------------------------------------------------------- bad input


def test_wrong_schema_is_rejected(results, tmp_path):
    results["schema"] = "obliviate.results/0"
    with pytest.raises(InvalidInputError, match=r"schema is 'obliviate.results/0', expected 'obliviate.results/1'"):
        write_report(results, tmp_path)
    with pytest.raises(InvalidInputError, match="schema"):
        leaderboard(results, "random-10pct")
    assert not (tmp_path / "report.html").exists()


def test_missing_oracle_is_rejected_before_writing(results, tmp_path):
    results["rows"] = [r for r in results["rows"] if not (r["method"] == "retrain" and r["scenario"] == "class-forget")]
    with pytest.raises(InvalidInputError, match=r"'class-forget' has no rows for the oracle \(method 'retrain'\)"):
        write_report(results, tmp_path)
    assert not (tmp_path / "report.html").exists()
    assert leaderboard(results, "random-10pct")[0]["method"] == "retrain"  # the other scenario is fine


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.__setitem__("rows", []), "non-empty list"),
        (lambda r: r["rows"][0].pop("metric"), r"rows\[0\].*lacks 'metric'"),
        (lambda r: r["rows"][0].__setitem__("value", 85.0), r"outside \[0, 1\].*divide percentages by 100"),
        (lambda r: r["rows"][0].__setitem__("value", "0.7"), "value must be a number or null"),
        (lambda r: r["rows"][0].__setitem__("seed", 0.5), "seed must be an integer or null"),
        (lambda r: r["rows"].append(dict(r["rows"][0])), r"rows\[0\] and rows\[\d+\] both give forget_accuracy"),
        (lambda r: r.__setitem__("versions", "0.1"), "'versions' must be an object"),
    ],
)
def test_malformed_documents_name_the_problem(results, change, message):
    change(results)
    with pytest.raises(InvalidInputError, match=message):
        leaderboard(results, "random-10pct")


def test_unknown_scenario_and_non_dict_are_rejected(results, tmp_path):
    with pytest.raises(InvalidInputError, match=r"no rows for scenario 'class-3'.*'random-10pct', 'class-forget'"):
        leaderboard(results, "class-3")
    with pytest.raises(InvalidInputError, match="results document"):
        leaderboard([], "random-10pct")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        write_report(results, tmp_path / "file")
