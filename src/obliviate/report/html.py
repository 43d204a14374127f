"""The self-contained HTML report: one file, inline CSS, figures embedded as base64 PNG.

Every piece of text that comes from the results document is escaped with :func:`html.escape`;
the page links to nothing outside itself, so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.errors import InvalidInputError
from obliviate.report.columns import (
    METRICS,
    Metric,
    fmt_gap,
    fmt_time,
    fmt_value,
    metric_info,
)
from obliviate.report.plots import (
    DPI,
    confidence_histogram,
    display_name,
    epsilon_chart,
    gap_chart,
    nips_chart,
    tradeoff_chart,
)
from obliviate.report.results import (
    ORACLE,
    ORIGINAL,
    SCHEMA,
    check_results,
    scenarios_of,
)
from obliviate.report.tables import board_from_rows
from obliviate.storage import atomic_write_bytes

__all__ = ["write_report", "render_report"]

REPORT_NAME = "report.html"
_HIDDEN = {"seconds", "efficiency"}  # shown together in the time column
_LIST_LIMIT = 20


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


# ---------------------------------------------------------------- the leaderboard table


def _columns(board: Sequence[dict[str, Any]]) -> list[str]:
    derived = {f"{k}{suffix}" for e in board for k in e for suffix in ("_std", "_gap")}
    skip = {"method", "role", "rank", "seeds", "time_fraction", *_HIDDEN, *derived}
    keys = [k for k in dict.fromkeys(k for e in board for k in e) if k not in skip]
    keys = [k for k in keys if any(e.get(k) is not None for e in board)]
    preferred = ["avg_gap", "forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy", "nips_score",
                 "nips_forget_score", "loss_auc", "relearn_epochs", "relearn_steps"]
    return [k for k in preferred if k in keys] + [k for k in keys if k not in preferred]


def _shown(text: str) -> float | None:
    """A formatted cell read back as a number, so highlighting compares what the reader sees."""
    text = text.replace("\u2212", "-").replace("\u221e", "inf").rstrip("\u00d7")
    return None if text == "\u2014" else float(text)


def _badness(entry: dict[str, Any], key: str) -> float | None:
    """How far from ideal a cell is (smaller is better), at the precision the table shows, so
    cells that read the same tie; None if not comparable."""
    if key == "time_fraction":
        return _shown(fmt_time(entry.get("time_fraction")))
    info = metric_info(key)
    if info.better == "oracle":
        gap = _shown(fmt_gap(entry.get(f"{key}_gap"), info))
        return None if gap is None else abs(gap)
    value = _shown(fmt_value(entry.get(key), info))
    return None if value is None else value if info.better == "lower" else -value


def _best(board: Sequence[dict[str, Any]], key: str) -> set[str]:
    """The unlearners with the best value of ``key`` (all of them on a tie); none if fewer than two compete."""
    scores = {e["method"]: _badness(e, key) for e in board if e["role"] == "unlearner"}
    scores = {m: s for m, s in scores.items() if s is not None}
    if len(scores) < 2:
        return set()
    low = min(scores.values())
    return {m for m, s in scores.items() if s == low}


def _std_text(std: float | None, info: Metric) -> str:
    if std is None:
        return ""
    return f'<span class="pm">\u00b1{esc(fmt_value(std, info))}</span>'


def _cell(entry: dict[str, Any], key: str, best: bool) -> str:
    info = metric_info(key)
    main = f'<span class="v">{esc(fmt_value(entry.get(key), info))}</span>{_std_text(entry.get(f"{key}_std"), info)}'
    sub = ""
    if info.gap and entry["role"] != "oracle" and entry.get(f"{key}_gap") is not None:
        sub = f'<span class="sub">\u0394 {esc(fmt_gap(entry[f"{key}_gap"], info))}</span>'
    elif entry["role"] == "oracle" and key == "avg_gap":
        sub = '<span class="sub">reference</span>'
    cls = ' class="best"' if best else ""
    return f"<td{cls}>{main}{sub}</td>"


def _time_cell(entry: dict[str, Any], best: bool) -> str:
    seconds = entry.get("seconds")
    sub = f'<span class="sub">{esc(fmt_value(seconds, METRICS["seconds"]))} s</span>' if seconds is not None else ""
    cls = ' class="best"' if best else ""
    return f'<td{cls}><span class="v">{esc(fmt_time(entry.get("time_fraction")))}</span>{sub}</td>'


def _direction(info: Metric) -> str:
    return {"lower": "\u2193 lower", "higher": "\u2191 higher", "oracle": "\u2248 oracle"}[info.better]


def _unit(info: Metric) -> str:
    return {"%": " (%)", "pts": " (pts)"}.get(info.unit, "")


def leaderboard_table(board: Sequence[dict[str, Any]]) -> str:
    cols = _columns(board)
    has_time = any(e.get("time_fraction") is not None for e in board)
    best = {k: _best(board, k) for k in cols + (["time_fraction"] if has_time else [])}
    head = ['<th class="rank">#</th>', '<th class="method">Method</th>']
    for key in cols:
        info = metric_info(key)
        head.append(
            f'<th title="{esc(info.help)}">{esc(info.label)}{esc(_unit(info))}'
            f'<span class="dir">{esc(_direction(info))}</span></th>'
        )
    if has_time:
        head.append('<th title="mean method seconds / mean retraining seconds">Time<span class="dir">'
                    "\u00d7 retraining \u2193</span></th>")
    body = []
    for e in board:
        tag = {"oracle": '<span class="tag oracle">oracle</span>',
               "original": '<span class="tag original">not unlearned</span>'}.get(e["role"], "")
        rank = e["rank"] if e["rank"] is not None else ""
        cells = [f'<td class="rank">{esc(rank)}</td>',
                 f'<td class="method"><span class="name">{esc(e["method"])}</span>{tag}</td>']
        cells += [_cell(e, k, e["method"] in best[k]) for k in cols]
        if has_time:
            cells.append(_time_cell(e, e["method"] in best["time_fraction"]))
        body.append(f'<tr class="{esc(e["role"])}">{"".join(cells)}</tr>')
    return (
        '<div class="table-wrap"><table class="board"><thead><tr>'
        + "".join(head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


# ---------------------------------------------------------------- the per-scenario section


def _headline(board: Sequence[dict[str, Any]]) -> str:
    lines = []
    ranked = [e for e in board if e["role"] == "unlearner" and e.get("avg_gap") is not None]
    if ranked:
        top = ranked[0]
        cost = f" at {esc(fmt_time(top['time_fraction']))} the retraining time" if top.get("time_fraction") else ""
        lines.append(
            f"Closest to the oracle: <strong>{esc(top['method'])}</strong>, Avg. Gap "
            f"{esc(fmt_value(top['avg_gap'], METRICS['avg_gap']))} points{cost}."
        )
    scored = [e for e in board if e["role"] == "unlearner" and e.get("nips_score") is not None]
    if scored:
        top = max(scored, key=lambda e: e["nips_score"])
        oracle = next((e for e in board if e["role"] == "oracle"), {})
        ref = (
            f" (the oracle's own split-half reference: {esc(fmt_value(oracle['nips_score'], METRICS['nips_score']))})"
            if oracle.get("nips_score") is not None
            else ""
        )
        lines.append(
            f"Highest NeurIPS 2023 score: <strong>{esc(top['method'])}</strong>, "
            f"{esc(fmt_value(top['nips_score'], METRICS['nips_score']))}{ref}."
        )
    original = next((e for e in board if e["role"] == "original"), None)
    if original is not None and original.get("avg_gap") is not None:
        lines.append(
            f"For scale, the original model before unlearning is "
            f"{esc(fmt_value(original['avg_gap'], METRICS['avg_gap']))} points from the oracle."
        )
    return f'<p class="headline">{" ".join(lines)}</p>' if lines else ""


def _img(png: bytes, alt: str) -> str:
    width = struct.unpack(">I", png[16:20])[0]  # IHDR width in pixels
    css = round(width * 96 / DPI)
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}" style="width:{css}px">'


def _figures(board: Sequence[dict[str, Any]], scenario: str) -> str:
    parts = []
    shown_original = any(
        e["role"] == "original" and (e.get("time_fraction") or 0) > 0 and math.isfinite(e["time_fraction"])
        for e in board
    )
    specs = [
        (gap_chart, "Gap to the oracle per metric",
         "Each bar is the method's mean minus the oracle's mean, in percentage points; the vertical line at 0 is "
         "the oracle. Short bars on all four metrics mean the model behaves like one retrained without the forget "
         "set. Whiskers: one standard deviation of the method over seeds."),
        (tradeoff_chart, "Forget quality against cost",
         "Each point is a method: its cost as a multiple of retraining (log scale; the star at 1\u00d7 is the "
         "oracle) against its Avg. Gap (lower is better) and NeurIPS 2023 score (higher is better). The best "
         "methods sit to the left, low on the Avg. Gap and high on the score. The green band is the 20% time "
         "budget of the NeurIPS 2023 challenge."
         + ("" if shown_original else " The original model costs nothing and is not drawn on the log scale.")),
        (nips_chart, "NeurIPS 2023 challenge scores",
         "The forget score F (light) and the final score (dark) per method, computed over the seeds."
         + (" The oracle's bar scores half of its retrained models against the other half: what a perfect method "
            "reaches here." if any(e["role"] == "oracle" and e.get("nips_score") is not None for e in board)
            else " The oracle has no bar: scoring it against itself needs at least four seeds.")),
    ]
    for draw, title, caption in specs:
        png = draw(board)
        if png is None:
            continue
        parts.append(
            f'<figure>{_img(png, f"{title}: {scenario}")}<figcaption><strong>{esc(title)}.</strong> '
            f"{esc(caption)}</figcaption></figure>"
        )
    return "".join(parts)


def _scenario_description(config: Mapping[str, Any], scenario: str) -> str:
    described = config.get("scenarios")
    if isinstance(described, Mapping):
        text = described.get(scenario)
        if isinstance(text, str):
            return text
        if isinstance(text, Mapping) and isinstance(text.get("description"), str):
            return text["description"]
    return ""


def _failures(config: Mapping[str, Any], scenario: str) -> str:
    failures = config.get("failures")
    if not isinstance(failures, list):
        return ""
    mine = [f for f in failures if isinstance(f, Mapping) and f.get("scenario") == scenario]
    if not mine:
        return ""
    items = "".join(
        f"<li><strong>{esc(f.get('method', '?'))}</strong>, seed {esc(f.get('seed', '?'))}: "
        f"{esc(f.get('error', ''))}</li>"
        for f in mine
    )
    return (
        f'<div class="failures"><strong>{len(mine)} run(s) failed</strong> and are missing from the means '
        f"(and from the NeurIPS scores of those methods):<ul>{items}</ul></div>"
    )


def _figure_html(png: bytes | None, title: str, scenario: str, caption: str) -> str:
    if png is None:
        return ""
    return (
        f'<figure>{_img(png, f"{title}: {scenario}")}<figcaption><strong>{esc(title)}.</strong> '
        f"{esc(caption)}</figcaption></figure>"
    )


def _number(value: Any, digits: int = 2) -> str:
    return esc(f"{value:.{digits}f}") if isinstance(value, (int, float)) and math.isfinite(value) else "\u2014"


def _worst_table(method: str, view: Mapping[str, Any], position: Mapping[int, int]) -> str:
    ulira = view.get("ulira_accuracy")
    head = "<tr><th>forget id</th><th>epsilon</th><th>median conf. unlearned</th><th>median conf. retrained</th>"
    head += "<th>U-LiRA acc. (%)</th></tr>" if ulira else "</tr>"
    rows = []
    for w in view.get("worst", []):
        cells = [esc(w.get("id")), _number(w.get("epsilon")), _number(w.get("unlearned_median")),
                 _number(w.get("retrained_median"))]
        if ulira:
            at = position.get(w.get("id"))
            cells.append(_number(100 * ulira[at], 1) if at is not None and at < len(ulira) else "\u2014")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    eps = [e for e in view.get("epsilons", []) if isinstance(e, (int, float))]
    summary = f"median epsilon {_number(float(np.median(eps)))}, largest {_number(max(eps))}" if eps else ""
    return (
        f"<details><summary><strong>{esc(method)}</strong> <span class=\"dir\">{summary}</span></summary>"
        f'<table class="grid nested">{head}{"".join(rows)}</table></details>'
    )


def _per_example(scenario: str, view: Any, board: Sequence[dict[str, Any]]) -> str:
    """Per-example epsilons (heatmap), the worst forget examples per method, one example's confidences."""
    if not isinstance(view, Mapping) or not isinstance(view.get("methods"), Mapping) or not view["methods"]:
        return ""
    methods: Mapping[str, Any] = view["methods"]
    order = [e["method"] for e in board if e["method"] in methods] + [m for m in methods if m not in {e["method"] for e in board}]
    roles = {e["method"]: e for e in board}
    labels = {m: display_name(roles[m]) if m in roles else m for m in order}
    num_models = int(view.get("num_models", 2))
    heat = epsilon_chart([(labels[m], methods[m].get("epsilons", [])) for m in order], num_models)
    scored = [e for e in board if e["role"] == "unlearner" and e.get("nips_score") is not None and e["method"] in methods]
    focus = max(scored, key=lambda e: e["nips_score"])["method"] if scored else order[0]
    example = methods[focus].get("example") or {}
    hist = confidence_histogram(example, focus)
    position = {int(i): k for k, i in enumerate(view.get("forget_ids", []))}
    tables = "".join(_worst_table(labels[m], methods[m], position) for m in order)
    return (
        '<div class="per-example"><h3>Per forget example</h3>'
        + _figure_html(
            heat, "Per-example epsilon", scenario,
            "For every forget example, the NeurIPS 2023 metric's empirical epsilon: how well the best threshold "
            "attack tells this method's models from the retrained ones on that one example. Each row shows how the "
            "method's forget examples spread over the scoring buckets; mass on the left is good. The oracle's row "
            "scores half of its retrained models against the other half (fewer models, so its last scored bucket "
            "ends earlier).",
        )
        + '<p class="note">The worst forget examples of each method (largest epsilon first), with the median '
        "logit-scaled confidence of the example under the method's models and under the retrained ones"
        + (", and U-LiRA's accuracy on that example" if any(methods[m].get("ulira_accuracy") for m in order) else "")
        + ". Click a method to open its list.</p>"
        + tables
        + _figure_html(
            hist, f"Confidences on forget example {example.get('id', '?')}", scenario,
            f"The worst forget example of {focus} (the unlearner with the highest NeurIPS score): its logit-scaled "
            "confidence under each unlearned model against each retrained one. Overlapping histograms mean no "
            "attack can tell them apart on this example.",
        )
        + "</div>"
    )


def _protocol_note(board: Sequence[dict[str, Any]], config: Mapping[str, Any]) -> str:
    """Which NeurIPS 2023 protocol the scores used; results written before the field existed were per-seed."""
    if not any(e.get("nips_score") is not None for e in board):
        return ""
    protocol = config.get("protocol") if isinstance(config.get("protocol"), str) else "per-seed"
    note = config.get("protocol_note") if isinstance(config.get("protocol_note"), str) else (
        "one original per seed; seed s unlearns its own original" if protocol == "per-seed" else ""
    )
    return f'<p class="note">NeurIPS 2023 score under the <strong>{esc(protocol)}</strong> protocol' + (
        f": {esc(note)}.</p>" if note else ".</p>"
    )


def _section(
    index: int, scenario: str, board: Sequence[dict[str, Any]], config: Mapping[str, Any], view: Any = None
) -> str:
    description = _scenario_description(config, scenario)
    seeds = max((e["seeds"] for e in board), default=0)
    methods = sum(e["role"] == "unlearner" for e in board)
    meta = f"{methods} method(s) against the oracle, {seeds} seed(s)"
    return (
        f'<section class="scenario" id="scenario-{index}">'
        f"<h2><span class=\"kicker\">Scenario</span> {esc(scenario)}</h2>"
        + f'<p class="desc">{f"Forget {esc(description)}. " if description else ""}{esc(meta)}.</p>'
        + _headline(board)
        + leaderboard_table(board)
        + '<p class="note">Means over seeds, \u00b1 the sample standard deviation. Under each number: '
        "\u0394, its gap to the oracle (method \u2212 oracle; percentage points for accuracies and MIA-Efficacy). "
        "Shaded green: the best unlearner in each column (closest to the oracle where the oracle is the target). "
        "Sorted by Avg. Gap; hover a column header for its definition.</p>"
        + (f'<p class="note">{esc(config["per_seed_note"])}.</p>' if isinstance(config.get("per_seed_note"), str) else "")
        + _protocol_note(board, config)
        + _failures(config, scenario)
        + _figures(board, scenario)
        + _per_example(scenario, view, board)
        + "</section>"
    )


# ---------------------------------------------------------------- language-model suites


def is_lm_results(results: Mapping[str, Any]) -> bool:
    """Whether the document comes from the authors suite (its leaderboard lives in ``report.lm``)."""
    from obliviate.report.suites import report_kind

    return report_kind(results) == "lm"


def _lm_cell(value: Any, kind: str) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "\u2014"
    return {"e": f"{value:.2e}", "x": fmt_time(value), "p": f"{value:.0f}"}.get(kind, f"{value:.3f}")


def _lm_section(index: int, scenario: str, results: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """An LM scenario: report.lm's leaderboard (against the retain model) and TOFU's trade-off plot."""
    from obliviate.report.lm import LM_COLUMN_NOTES, LM_COLUMNS, lm_leaderboard, tofu_chart

    board = lm_leaderboard(dict(results), scenario)
    head = '<th class="method">Method</th>' + "".join(
        f'<th title="{esc(LM_COLUMN_NOTES.get(key, ""))}">{esc(h)}</th>' for h, key, _ in LM_COLUMNS
    )
    notes = "".join(
        f"<li><b>{esc(h)}</b>: {esc(LM_COLUMN_NOTES[key])}</li>" for h, key, _ in LM_COLUMNS if key in LM_COLUMN_NOTES
    )
    body = []
    for e in board:
        tag = {"oracle": '<span class="tag oracle">retain model</span>',
               "original": '<span class="tag original">target</span>'}.get(e["role"], "")
        cells = "".join(f"<td>{esc(_lm_cell(e.get(key), kind))}</td>" for _, key, kind in LM_COLUMNS)
        body.append(f'<tr class="{esc(e["role"])}"><td class="method"><span class="name">{esc(e["method"])}</span>'
                    f"{tag}</td>{cells}</tr>")
    description = _scenario_description(config, scenario)
    return (
        f'<section class="scenario" id="scenario-{index}"><h2><span class="kicker">Scenario</span> {esc(scenario)}</h2>'
        + (f'<p class="desc">Forget {esc(description)}.</p>' if description else "")
        + f'<div class="table-wrap"><table class="board"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table></div>"
        + (f'<details class="desc"><summary>What the columns mean</summary><ul>{notes}</ul></details>' if notes else "")
        + _failures(config, scenario)
        + _figure_html(
            tofu_chart(board, title=scenario), "Forget quality against model utility", scenario,
            "TOFU's trade-off (Maini et al. 2024, Fig. 5): forget quality is the KS-test p-value of the truth ratios "
            "against the retain model's (log scale; the retain model sits at the top); a good method moves up "
            "without losing utility.",
        )
        + "</section>"
    )


def _kn_cell(value: Any, kind: str) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "\u2014"
    return {"%": f"{100 * value:.0f}", "x": f"{value:.2f}\u00d7", "f": f"{value:.1f}"}.get(kind, f"{value:.3f}")


def _knowledge_section(index: int, scenario: str, results: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """A knowledge scenario: the scope table, the attack table (report.knowledge) and the trade-off plot."""
    from obliviate.report.knowledge import ATTACK_COLUMNS, SCOPE_COLUMNS, knowledge_board, knowledge_chart

    board = knowledge_board(dict(results), scenario)
    info = config.get("knowledge") if isinstance(config.get("knowledge"), Mapping) else {}

    def label(e: Mapping[str, Any]) -> str:
        tag = '<span class="tag original">not unlearned</span>' if e["role"] == "original" else ""
        if e.get("collapsed"):
            tag += '<span class="tag collapsed">collapsed</span>'
        return f'<td class="method"><span class="name">{esc(e["method"])}</span>{tag}</td>'

    scope_head = '<th class="method">Method</th>' + "".join(f"<th>{esc(h)}</th>" for h, _, _ in SCOPE_COLUMNS)
    scope = "".join(
        f'<tr class="{esc(e["role"])}">{label(e)}' + "".join(f"<td>{esc(_kn_cell(e.get(k), kind))}</td>" for _, k, kind in SCOPE_COLUMNS)
        + "</tr>" for e in board
    )
    attack_head = '<th class="method">Method</th>' + "".join(f"<th>{esc(h)}</th>" for h, _ in ATTACK_COLUMNS)
    attack = "".join(
        f'<tr class="{esc(e["role"])}">{label(e)}' + "".join(f"<td>{esc(_kn_cell(e.get(k), '%'))}</td>" for _, k in ATTACK_COLUMNS)
        + "</tr>" for e in board
    )
    filt = info.get("filter") if isinstance(info.get("filter"), Mapping) else {}
    filt_rows = "".join(
        f"<tr><td class=\"method\">{esc(k)}</td><td>{esc(v.get('candidates'))}</td><td>{esc(v.get('kept'))}</td>"
        f"<td>{esc(v.get('dropped'))}</td><td>{esc(_kn_cell(v.get('accuracy_before_filter'), '%'))}</td></tr>"
        for k, v in filt.items() if isinstance(v, Mapping)
    )
    notes = [n for n in info.get("notes", []) if isinstance(n, str)]
    notes_html = ("<div class=\"failures\"><strong>Question sets and confidence</strong><ul>"
                  + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></div>") if notes else ""
    setup = info.get("attack_setup") if isinstance(info.get("attack_setup"), Mapping) else {}
    description = config.get("description") if isinstance(config.get("description"), str) else ""
    return (
        f'<section class="scenario" id="scenario-{index}"><h2><span class="kicker">Scenario</span> {esc(scenario)}</h2>'
        + (f'<p class="desc">{esc(description)}. Model: {esc(config.get("model", "?"))}.</p>' if description else "")
        + "<h3>Scope: what was forgotten, and what was not</h3>"
        f'<div class="table-wrap"><table class="board"><thead><tr>{scope_head}</tr></thead><tbody>{scope}</tbody></table></div>'
        '<p class="note">Multiple-choice accuracy in % (4 choices: chance 25), scored as lm-evaluation-harness does '
        "(log-likelihood of each choice after the chat prompt); short answer: the greedy answer contains the fact. "
        "Forget columns: the same facts asked as the canonical question, a paraphrase, in reverse, and as a free answer "
        "(lower is better). Neighbours: nearby facts that must survive; retain: the retain domains (higher is better). "
        "Perplexity on held-out English prose no method trains on. A method whose retain accuracy is within 10 points "
        "of chance is flagged <em>collapsed</em>.</p>"
        + "<h3>Attacks that undo unlearning</h3>"
        f'<div class="table-wrap"><table class="board"><thead><tr>{attack_head}</tr></thead><tbody>{attack}</tbody></table></div>'
        f'<p class="note">Accuracy in % on the held-out forget questions ({esc(setup.get("scored_on", ""))}), the model as '
        "given (own) and after each attack: relearning on a disjoint slice of the forget corpus, round-to-nearest weight "
        "quantisation, few-shot forget facts in the prompt, and a logistic-regression probe on hidden states.</p>"
        + _failures(config, scenario)
        + _figure_html(
            knowledge_chart(board, title=scenario), "Forget against retain accuracy, with attacks", scenario,
            "Each point is a model at (retain accuracy, held-out forget accuracy); each arrow ends at the forget accuracy "
            "an attack recovers. The goal is the bottom right with short arrows.",
        )
        + ("<h3>Question filter (the original model)</h3><p class=\"desc\">Only questions the original answers well above "
           "chance are scored.</p><div class=\"table-wrap\"><table class=\"board\"><thead><tr><th class=\"method\">set</th>"
           "<th>candidates</th><th>kept</th><th>dropped</th><th>original accuracy before filter (%)</th></tr></thead>"
           f"<tbody>{filt_rows}</tbody></table></div>" if filt_rows else "")
        + notes_html
        + "</section>"
    )


# ---------------------------------------------------------------- header, guide, configuration


def _inline(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple)) and not value:
        return "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        shown = [_inline(v) for v in value[:_LIST_LIMIT]]
        more = f", \u2026 ({len(value) - _LIST_LIMIT} more)" if len(value) > _LIST_LIMIT else ""
        return "[" + ", ".join(shown) + more + "]"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "null"
    return str(value)


def _config_value(value: Any) -> str:
    """A config value as HTML: a mapping of mappings or a list of mappings becomes a nested table."""
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_inline(v))}</td></tr>" for k, v in value.items())
        return f'<table class="kv nested">{rows}</table>'
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        keys = list(dict.fromkeys(k for v in value for k in v))
        head = "".join(f"<th>{esc(k)}</th>" for k in keys)
        rows = "".join("<tr>" + "".join(f"<td>{esc(_inline(v.get(k, '')))}</td>" for k in keys) + "</tr>"
                       for v in value[:_LIST_LIMIT])
        return f'<table class="grid nested"><tr>{head}</tr>{rows}</table>'
    if isinstance(value, Mapping) and value:
        chips = "".join(f'<span class="chip">{esc(k)}={esc(_inline(v))}</span>' for k, v in value.items())
        return f'<div class="chips">{chips}</div>'
    return esc(_inline(value))


def _config_section(config: Mapping[str, Any]) -> str:
    if not config:
        return ""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{_config_value(v)}</td></tr>" for k, v in config.items())
    return (
        '<section id="configuration"><h2>Configuration</h2>'
        '<p class="desc">As recorded in the results document.</p>'
        f'<table class="kv config">{rows}</table></section>'
    )


def _created(created: Any) -> str:
    if not isinstance(created, str) or not created:
        return "\u2014"
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return created
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()


def _guide(metrics_seen: set[str]) -> str:
    items = "".join(
        f"<dt>{esc(m.label)} <span class=\"dir\">{esc(_direction(m))}</span></dt><dd>{esc(m.help)}</dd>"
        for m in METRICS.values()
        if m.key in metrics_seen and m.key not in _HIDDEN
    )
    time = (
        "<dt>Time <span class=\"dir\">\u2193 lower</span></dt><dd>The method's mean wall-clock seconds divided by "
        "the oracle's (retraining from scratch); 0.1\u00d7 is ten times faster than retraining. The NeurIPS 2023 "
        "challenge required under about 0.2\u00d7.</dd>"
    )
    return (
        '<section id="how-to-read"><h2>How to read this report</h2>'
        "<p>Unlearning should leave a model that behaves as if it had never seen the forget set. The reference is "
        f"the <strong>oracle</strong> (method <code>{esc(ORACLE)}</code>): the same recipe retrained from scratch "
        "on the retained data only. <strong>Every gap in this report is measured against it</strong>: "
        "\u0394 = method \u2212 oracle, averaged over seeds; for accuracies and MIA-Efficacy in percentage points. "
        "Matching the oracle is the goal, so for most metrics neither higher nor lower is better, closer is. "
        f"The <strong>original</strong> (method <code>{esc(ORIGINAL)}</code>) is the trained model before "
        "unlearning: doing nothing, it shows how far from the oracle a method starts. Each seed trains its own "
        "original and oracle, and each method is applied to that seed's original.</p>"
        f'<dl class="guide">{items}{time}</dl></section>'
    )


_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--soft:#f5f7fa;--accent:#0b4f8a;--best:#e3f8ec;--bestink:#0e5a35}
*{box-sizing:border-box}
body{margin:0;background:#f0f2f5;color:var(--ink);font:15px/1.55 -apple-system,BlinkMacSystemFont,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
main{max-width:1380px;margin:0 auto;padding:24px 20px 48px}
header.top{background:#fff;border:1px solid var(--line);border-radius:10px;padding:26px 30px 20px;margin-bottom:22px;
border-top:4px solid var(--accent)}
.eyebrow{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);font-weight:600}
h1{font-size:28px;margin:4px 0 6px;letter-spacing:-.01em}
h2{font-size:21px;margin:0 0 6px;letter-spacing:-.01em}
.kicker{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);font-weight:600;
margin-right:6px;vertical-align:2px}
.lede{margin:0 0 14px;color:var(--muted)}
dl.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px 22px;margin:0 0 14px}
dl.meta div.wide{grid-column:1/-1}
dl.meta div{border-left:3px solid var(--line);padding-left:10px}
dl.meta dt{font-size:11.5px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
dl.meta dd{margin:0;font-weight:600;font-size:14px}
nav{font-size:14px;border-top:1px solid var(--line);padding-top:12px}
nav a{color:var(--accent);text-decoration:none;margin-right:18px}
nav a:hover{text-decoration:underline}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:24px 26px;margin-bottom:22px}
p.desc{color:var(--muted);margin:0 0 10px}
p.headline{background:var(--soft);border-left:4px solid var(--accent);padding:10px 14px;margin:12px 0 16px;
border-radius:0 6px 6px 0}
.table-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table.board{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
table.board th{background:var(--soft);font-weight:600;text-align:right;padding:9px 8px;border-bottom:1px solid
var(--line);white-space:nowrap;vertical-align:bottom;cursor:help}
table.board th .dir{display:block;font-weight:400;font-size:11px;color:var(--muted)}
table.board td{text-align:right;padding:7px 8px;border-bottom:1px solid var(--line);white-space:nowrap;
vertical-align:top}
table.board tr:last-child td{border-bottom:none}
table.board th.method,table.board td.method{text-align:left}
table.board th.rank,table.board td.rank{text-align:center;color:var(--muted);width:34px}
table.board td .v{font-weight:500}
table.board td .pm{color:var(--muted);font-size:11.5px;margin-left:3px}
table.board td .sub{display:block;font-size:11.5px;color:var(--muted)}
table.board td.best{background:var(--best)}
table.board td.best .v{color:var(--bestink);font-weight:700}
table.board tr.oracle td{background:#eef4fb}
table.board tr.original td{color:var(--muted);background:#fafbfc}
table.board tr.original td .v{font-weight:400}
table.board tr:hover td{background:#f7f9fb}
table.board tr.unlearner:hover td.best{background:#d4f2e1}
td.method .name{font-weight:600}
.tag{display:inline-block;font-size:10.5px;font-weight:600;text-transform:uppercase;letter-spacing:.05em;
padding:1px 7px;border-radius:10px;margin-left:8px;vertical-align:1px}
.tag.oracle{background:#d6e6f8;color:#0b4f8a}
.tag.original{background:#e4e7eb;color:#52606d}
.tag.collapsed{background:#fde2e2;color:#9b1c1c}
p.note{font-size:12.5px;color:var(--muted);margin:10px 0 0}
.failures{background:#fff8e6;border:1px solid #f4d99a;border-radius:8px;padding:10px 14px;margin-top:14px;
font-size:13.5px}
.failures ul{margin:6px 0 0;padding-left:20px}
figure{margin:26px 0 0;padding-top:18px;border-top:1px solid var(--line)}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{font-size:13px;color:var(--muted);margin-top:8px;max-width:900px;margin-left:auto;margin-right:auto}
figcaption strong{color:var(--ink)}
.per-example{margin-top:26px;padding-top:6px;border-top:1px solid var(--line)}
h3{font-size:17px;margin:10px 0 6px}
details{margin:6px 0;font-size:13px}
details summary{cursor:pointer}
details .dir{color:var(--muted);font-size:12px;margin-left:6px}
dl.guide{display:grid;grid-template-columns:220px 1fr;gap:8px 20px;margin:14px 0 0}
dl.guide dt{font-weight:600}
dl.guide dt .dir{display:block;font-weight:400;font-size:12px;color:var(--muted)}
dl.guide dd{margin:0;color:#323f4b}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;background:var(--soft);
padding:1px 5px;border-radius:4px}
table.kv{border-collapse:collapse;width:100%;font-size:13.5px}
table.kv th{text-align:left;vertical-align:top;padding:7px 14px 7px 0;width:170px;color:var(--muted);font-weight:600}
table.kv td{padding:7px 0;border-bottom:1px solid var(--line)}
table.kv.nested th{width:auto;padding:3px 14px 3px 0;font-family:ui-monospace,Menlo,Consolas,monospace;
color:var(--ink);font-weight:500}
table.kv.nested td{padding:3px 0;border-bottom:1px dashed var(--line);font-family:ui-monospace,Menlo,Consolas,
monospace;font-size:12.5px;color:#323f4b;white-space:normal}
table.grid{border-collapse:collapse;font-size:12.5px}
table.grid th,table.grid td{border:1px solid var(--line);padding:3px 8px;text-align:left}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;background:var(--soft);border:1px solid
var(--line);border-radius:5px;padding:1px 7px}
footer{text-align:center;font-size:12.5px;color:var(--muted);margin-top:8px}
"""


def render_report(results: Mapping[str, Any]) -> str:
    """The report page of a results document, as one HTML string."""
    rows = check_results(results)
    config = results.get("config") or {}
    versions = results.get("versions") or {}
    scenarios = scenarios_of(rows)
    from obliviate.report.suites import report_kind

    kind = report_kind(results)  # one dispatch for every suite, on the results' suite field
    knowledge = kind == "knowledge"
    lm = kind in ("lm", "knowledge")
    boards = [(s, [] if lm else board_from_rows(rows, s)) for s in scenarios]  # validates every scenario before drawing
    suite = results["suite"]
    meta = [
        ("Suite", suite),
        ("Created", _created(results.get("created"))),
        ("Scenarios", ", ".join(scenarios)),
        ("Methods", str(len({r.method for r in rows} - {ORACLE, ORIGINAL}))
         + (" + the original (no oracle: the model's pretraining cannot be redone)" if knowledge else " + oracle and original")),
        ("Seeds", str(len({r.seed for r in rows if r.seed is not None}))),
        ("Versions", " \u00b7 ".join(f"{k} {v}" for k, v in versions.items()) or "\u2014"),
    ]
    meta_html = "".join(
        f'<div class="{"wide" if k == "Versions" else "item"}"><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>'
        for k, v in meta
    )
    nav = "".join(f'<a href="#scenario-{i}">{esc(s)}</a>' for i, (s, _) in enumerate(boards))
    if not knowledge:
        nav += '<a href="#how-to-read">How to read this report</a>'
    if config:
        nav += '<a href="#configuration">Configuration</a>'
    description = config.get("description") if isinstance(config.get("description"), str) else ""
    body = [
        '<header class="top"><div class="eyebrow">obliviate \u00b7 unlearning benchmark report</div>',
        f"<h1>{esc(suite)}: " + ("what unlearning removed, what it kept, and what comes back" if knowledge
                                 else "unlearning methods against the retrained oracle") + "</h1>",
        f'<p class="lede">{esc(description)}</p>' if description else "",
        f'<dl class="meta">{meta_html}</dl><nav>{nav}</nav></header>',
    ]
    per_example = results.get("per_example") if isinstance(results.get("per_example"), Mapping) else {}
    if knowledge:
        body += [_knowledge_section(i, s, results, config) for i, (s, _) in enumerate(boards)]
    elif lm:
        body += [_lm_section(i, s, results, config) for i, (s, _) in enumerate(boards)]
    else:
        body += [_section(i, s, board, config, per_example.get(s)) for i, (s, board) in enumerate(boards)]
    if not knowledge:  # the guide explains the oracle, which the knowledge suite does not have
        body.append(_guide({r.metric for r in rows}))
    if knowledge:  # its filter, notes and attacks are in the scenario section; the rest stays here
        extra = config.get("knowledge") if isinstance(config.get("knowledge"), Mapping) else {}
        shown = ("sources", "perplexity_source", "corpus", "relearn_owners", "attack_setup", "stage_seconds", "seconds_total")
        config = {**{k: v for k, v in config.items() if k != "knowledge"}, **{k: extra[k] for k in shown if k in extra}}
    body.append(_config_section(config))
    version = versions.get("obliviate", "")
    body.append(
        f"<footer>Generated by obliviate {esc(version)} from a results document of schema "
        f"<code>{esc(SCHEMA)}</code>.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(suite)} \u00b7 obliviate report</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` (atomically) from a results document; return its path.

    The page is self-contained: inline CSS, figures as base64 PNG, no external links. Raises
    :class:`InvalidInputError` for a malformed document (wrong schema, bad rows, a scenario
    without the ``retrain`` oracle) before anything is written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"out_dir {out} is a file; pass the folder report.html should go into.")
    page = render_report(results)
    path = out / REPORT_NAME
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
