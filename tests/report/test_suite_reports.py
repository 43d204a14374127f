"""One report path for every suite: bench and report write report.html and the suite's charts, print
the suite's tables (dispatch on the results' suite field), and no trade-off label covers another."""

from __future__ import annotations

import json
from itertools import combinations

import pytest

from obliviate.lm.training import FinetuneRecipe
from obliviate.report.suites import report_kind


@pytest.fixture
def small_authors_cli(monkeypatch):
    """``obliviate bench --suite authors --model tiny`` sized down to seconds (the tiny GPT, 10 authors)."""
    import obliviate.bench.lm as bench_lm_module
    import obliviate.lm.training as training
    from obliviate.data.authors import fictitious_authors

    small = fictitious_authors(n_authors=10, qa_per_author=4, n_holdout=2, seed=0)
    monkeypatch.setattr(bench_lm_module, "tiny_benchmark", lambda seed=0: small)
    monkeypatch.setattr(
        training, "TINY_BENCH_SIZE", {"n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 400, "max_length": 64}
    )
    monkeypatch.setattr(training, "TINY_FINETUNE", FinetuneRecipe(epochs=3, lr=5e-3, batch_size=8, weight_decay=0.0))


def test_authors_bench_and_report_through_the_cli(run_cli, small_authors_cli, tmp_path):
    out = tmp_path / "run"
    done = run_cli(
        "bench", "--suite", "authors", "--model", "tiny", "--methods", "grad_diff", "--scenario", "forget10",
        "--set", "grad_diff.epochs=1", "--out", str(out), "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.csv", "report.html", "tofu_forget10.png"}
    page = (out / "report.html").read_text()
    assert "Forget quality against model utility" in page and "grad_diff" in page
    assert "against the retain model" in done.stdout  # the LM leaderboard, not the classifier one

    redraw = tmp_path / "redraw"
    again = run_cli("report", str(out / "results.json"), "--out", str(redraw))
    assert again.returncode == 0, again.stderr
    assert {p.name for p in redraw.iterdir()} == {"report.html", "tofu_forget10.png"}
    assert "against the retain model" in again.stdout and "gap to the retrained oracle" not in again.stdout
    board_lines = [line for line in again.stdout.splitlines() if "grad_diff" in line]
    assert board_lines and all(line.count(" - ") < 3 for line in board_lines)  # numbers, not a row of dashes
    assert json.loads((out / "results.json").read_text())["suite"] == "authors"


def test_report_kind_dispatches_on_the_suite_field():
    assert report_kind({"suite": "authors"}) == "lm"
    assert report_kind({"suite": "knowledge"}) == "knowledge"
    assert report_kind({"suite": "digits"}) == report_kind({"suite": "cifar10"}) == "classifier"
    assert report_kind({"suite": "custom", "config": {"kind": "knowledge"}}) == "knowledge"
    assert report_kind({"suite": "custom", "kind": "lm"}) == "lm"


def test_print_tables_picks_the_suites_printer(monkeypatch):
    import obliviate.cli.core as core
    import obliviate.cli.knowledge as knowledge
    import obliviate.cli.lm as lm
    from obliviate.cli.outputs import print_tables

    calls = []
    monkeypatch.setattr(core, "_print_leaderboard", lambda r, s: calls.append(("classifier", s)))
    monkeypatch.setattr(lm, "print_lm_leaderboard", lambda r, s: calls.append(("lm", s)))
    monkeypatch.setattr(knowledge, "print_knowledge_tables", lambda r: calls.append(("knowledge", None)))
    rows = [{"scenario": "a", "method": "m", "seed": 0, "metric": "x", "value": 1.0}]
    for suite in ("digits", "authors", "knowledge"):
        print_tables({"suite": suite, "config": {"scenarios": {"a": {}, "b": {}}}, "rows": rows})
    assert calls == [("classifier", "a"), ("classifier", "b"), ("lm", "a"), ("lm", "b"), ("knowledge", None)]


def _label_boxes(fig):
    """The labels' text boxes (``Text``'s extent: an annotation's own would include its leader line)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    names = {"retrain", "original", "npo", "grad_diff", "simnpo", "idk_dpo"}
    return [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_text().split(" ")[0] in names]


def test_tofu_chart_labels_do_not_overlap(monkeypatch):
    """Six methods at almost the same point: each label gets its own place."""
    import obliviate.report.lm as report_lm

    board = [
        {"method": "retrain", "role": "oracle", "forget_quality": 1.0, "model_utility": 0.50},
        {"method": "original", "role": "original", "forget_quality": 0.01, "model_utility": 0.52},
    ] + [
        {"method": m, "role": "unlearner", "forget_quality": 0.011 + 0.0005 * i, "model_utility": 0.515 + 0.001 * i}
        for i, m in enumerate(["npo", "grad_diff", "simnpo", "idk_dpo"])
    ]
    seen = {}

    def keep(fig):
        fig.canvas.draw()
        seen["boxes"] = _label_boxes(fig)
        return b"png"

    monkeypatch.setattr(report_lm, "_png", keep)
    assert report_lm.tofu_chart(board) == b"png"
    boxes = seen["boxes"]
    assert len(boxes) == 6
    overlaps = [(i, j) for (i, a), (j, b) in combinations(enumerate(boxes), 2) if a.overlaps(b)]
    assert not overlaps
