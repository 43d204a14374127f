"""The knowledge suite end to end on a tiny GPT: filter, scope rows, attacks, collapse flag, report."""

from __future__ import annotations

import pytest

from obliviate.bench.knowledge import (
    ATTACKS,
    KnowledgeConfig,
    collapsed,
    filter_questions,
    run_knowledge,
    score_knowledge,
)
from obliviate.bench.results import write_results
from obliviate.errors import InvalidInputError
from obliviate.evaluation.knowledge import TooFewQuestionsError

CONFIG = KnowledgeConfig(
    limits={"elements": 16, "geography": 6, "compounds": 6},
    keep_p=0.0,
    perplexity_texts=2,
    relearn_steps=2,
    shots=2,
    group_size=16,
    answer_tokens=4,
    forget_probes=("mcq", "paraphrase", "reverse", "short"),
)


@pytest.fixture(scope="module")
def doc(kn_lm):
    return run_knowledge(
        kn_lm,
        methods=["grad_diff"],
        settings={"grad_diff.epochs": 1, "grad_diff.lr": 1e-3},
        config=CONFIG,
        attacks=ATTACKS,
        show_progress=False,
    )


def _value(doc, method, metric):
    rows = [r["value"] for r in doc["rows"] if r["method"] == method and r["metric"] == metric]
    assert len(rows) == 1, (method, metric)
    return rows[0]


def test_filter_keeps_exactly_what_the_original_answers_well(kn_lm, small_knowledge):
    qs = [q for q in small_knowledge.questions if q.probe != "short"]
    scores = score_knowledge(kn_lm, qs, config=CONFIG)
    kept, stats = filter_questions(small_knowledge.keep([q.id for q in qs]), scores, keep_p=0.3)
    assert {q.id for q in kept.questions} == {q.id for q in qs if scores[q.id] == 1.0 and scores[f"{q.id}#p"] >= 0.3}
    assert sum(s["kept"] for s in stats.values()) == len(kept.questions)
    assert sum(s["candidates"] for s in stats.values()) == len(qs)


def test_rows_scope_and_attacks(doc):
    assert doc["suite"] == "knowledge" and doc["config"]["scenarios"] == ["forget-elements"]
    methods = {r["method"] for r in doc["rows"]}
    assert methods == {"original", "grad_diff"}, doc["config"]["failures"]
    # the original answers every kept question right, by construction of the filter
    for metric in ("forget_mcq_all_accuracy", "retain_accuracy", "heldout_forget_accuracy"):
        assert _value(doc, "original", metric) == 1.0
    assert _value(doc, "original", "retain_vs_original") == 1.0
    assert _value(doc, "original", "perplexity") > 1
    assert _value(doc, "grad_diff", "gradient_steps") > 0
    info = doc["config"]["knowledge"]
    assert info["sources"]["elements"]["package"] == "periodictable"
    assert any(k.startswith("forget/") for k in info["filter"])
    assert any("too wide" in n for n in info["notes"])  # a handful of questions cannot resolve 5 points
    for method in ("original", "grad_diff"):
        ran = info["attacks"][method]
        failed = [f["error"] for f in doc["config"]["failures"] if f["method"] == method]
        assert set(ran) | {e.split(":")[0] for e in failed} == set(ATTACKS)
        for attack, d in ran.items():
            assert _value(doc, method, f"attack_{attack}") == d["after"]
            if attack != "linear_probe":  # the probe's "before" is its own MCQ reading
                assert d["before"] == pytest.approx(_value(doc, method, "heldout_forget_accuracy"))


def test_report_and_chart(doc, tmp_path):
    from obliviate.report import write_report
    from obliviate.report.knowledge import knowledge_board, write_knowledge_chart

    write_results(doc, tmp_path)
    charts = write_knowledge_chart(doc, tmp_path)
    assert charts and charts[0].read_bytes()[:4] == b"\x89PNG"
    page = write_report(doc, tmp_path).read_text()
    assert "Scope: what was forgotten" in page and "Attacks that undo unlearning" in page
    assert "data:image/png;base64," in page and "Question filter" in page
    board = knowledge_board(doc, "forget-elements")
    assert board[0]["method"] == "original"


def test_collapse_is_flagged():
    assert collapsed(0.30) and collapsed(0.25) and not collapsed(0.6)


def test_bad_input(kn_lm):
    with pytest.raises(InvalidInputError, match="pretrained"):
        run_knowledge("tiny", methods=["grad_diff"], config=CONFIG)
    with pytest.raises(InvalidInputError, match="unknown language-model method"):
        run_knowledge(kn_lm, methods=["scrub"], config=CONFIG)
    with pytest.raises(InvalidInputError, match="unknown attack"):
        run_knowledge(kn_lm, methods=["grad_diff"], config=CONFIG, attacks=["jailbreak"])
    with pytest.raises(TooFewQuestionsError, match="too wide"):
        run_knowledge(kn_lm, methods=[], config=CONFIG, attacks=(), strict=True, show_progress=False)


def test_cli_entry_refuses_bad_scenarios_and_seeds(tmp_path):
    from obliviate.cli.knowledge import bench_knowledge
    from obliviate.data.knowledge import UnknownDomainError

    common = {"model": "smollm2", "methods": None, "settings": {}, "out": tmp_path, "progress": False}
    with pytest.raises(UnknownDomainError, match="known domains: elements, geography, compounds"):
        bench_knowledge(seeds=None, scenarios=["forget-biology"], **common)
    with pytest.raises(InvalidInputError, match="forget-<domain>"):
        bench_knowledge(seeds=None, scenarios=["random-10pct"], **common)
    with pytest.raises(InvalidInputError, match="one seed"):
        bench_knowledge(seeds=3, scenarios=None, **common)
    with pytest.raises(InvalidInputError, match="rmu.lr"):
        bench_knowledge(seeds=None, scenarios=None, **{**common, "settings": {"lr": 1e-3}})


def test_obliviate_report_redraws_a_knowledge_results_file(doc, tmp_path, monkeypatch, capsys):
    """``obliviate report results.json`` on the knowledge suite prints its scope tables (no classifier leaderboard)."""
    import sys

    from obliviate.cli import main

    json_path, _ = write_results(doc, tmp_path)
    monkeypatch.setattr(sys, "argv", ["obliviate", "report", str(json_path)])
    try:
        main()
    except SystemExit as exc:  # typer's standalone mode exits 0 on success
        assert not exc.code
    out = capsys.readouterr().out
    assert "scope" in out and "report.html" in out
    assert (tmp_path / "report.html").is_file()


def test_attacking_each_model_as_it_is_made_changes_no_unlearning_result(doc, kn_lm):
    """The attacks run on the original before any method unlearns from it, and on each unlearned model before the next
    is made (one model held at a time): the unlearned models' own rows equal a run without attacks."""
    plain = run_knowledge(
        kn_lm,
        methods=["grad_diff"],
        settings={"grad_diff.epochs": 1, "grad_diff.lr": 1e-3},
        config=CONFIG,
        attacks=(),
        show_progress=False,
    )
    own = {(r["method"], r["metric"]): r["value"] for r in plain["rows"] if r["metric"] != "seconds"}
    attacked = {
        (r["method"], r["metric"]): r["value"]
        for r in doc["rows"]
        if r["metric"] != "seconds" and not r["metric"].startswith("attack_")
    }
    assert own == attacked
    assert not any(m.startswith("attack_") for _, m in own)
