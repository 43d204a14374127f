"""The language-model leaderboard and TOFU's trade-off plot (forget quality against model utility).

TOFU (Maini et al. 2024, Fig. 5) plots each method's forget quality (the KS-test p-value, on a
log axis) against its model utility; the retain model sits at the top (forget quality 1) and a
good method moves towards it without losing utility. Figures are rendered off-screen (Agg).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.report.plots import _figure, _png, display_name, place_labels
from obliviate.report.results import check_results
from obliviate.results import ORACLE, ORIGINAL
from obliviate.storage import atomic_write_bytes

__all__ = ["LM_COLUMNS", "LM_COLUMN_NOTES", "lm_leaderboard", "tofu_chart", "write_tofu_charts"]

# (header, metric, format): "e" scientific (p-values span many decades), "f" fixed, "x" ratio.
LM_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("forget quality", "forget_quality", "e"),
    ("model utility", "model_utility", "f"),
    ("utility / target", "utility_vs_target", "x"),
    ("forget Prob", "forget_prob", "f"),
    ("forget ROUGE", "forget_rouge", "f"),
    ("forget TR", "forget_truth_ratio", "f"),
    ("privleak %", "privleak", "p"),
    ("MIA AUC min-k", "mia_auc_min_k", "f"),
    ("degenerate", "degenerate_share", "f"),
    ("relearn steps", "relearn_steps", "p"),
    ("time / retrain", "time_fraction", "x"),
)

LM_COLUMN_NOTES: dict[str, str] = {
    "forget_quality": "KS-test p-value of the forget truth ratios against the retain model's (TOFU); higher is better, 1 = indistinguishable.",
    "model_utility": "harmonic mean of Prob, ROUGE-L and truth ratio on retain items and world facts (TOFU).",
    "utility_vs_target": "model utility over the target's (the model before unlearning).",
    "forget_prob": "mean answer probability exp(-NLL/|y|) on the forget set.",
    "forget_rouge": "ROUGE-L recall of the greedy answer on the forget set.",
    "forget_truth_ratio": "mean min(TR, 1/TR) on the forget set (TOFU).",
    "privleak": "MUSE PrivLeak in percent: (A_u - A_r) / A_r * 100 with A = 1 - AUC of the Min-40% attack, forget vs "
    "holdout (MUSE's AUC orientation, as open-unlearning computes it); 0 ideal, an un-unlearned target is near -100, "
    "negative = under-unlearned, positive = over-unlearned.",
    "mia_auc_min_k": "Min-40% membership AUC, forget (members) vs holdout; 0.5 = unseen-like, 1 = recognised.",
    "degenerate_share": "share of greedy answers that are empty or repetitive.",
    "relearn_steps": "fine-tuning steps on the forget set until forget Prob is back at 90% of the target's (more = harder to relearn).",
    "time_fraction": "unlearning seconds over the retain model's training seconds.",
}
"""What each :data:`LM_COLUMNS` metric means (for table captions and tooltips)."""


def _role(method: str) -> str:
    return "oracle" if method == ORACLE else "original" if method == ORIGINAL else "unlearner"


def lm_leaderboard(results: dict, scenario: str) -> list[dict[str, Any]]:
    """One row per method of ``scenario``: ``method``, ``role``, ``seeds`` and the mean over seeds of
    every metric (``None`` where missing). The retain model first, then the methods by forget
    quality (highest first; missing last), then the target (``original``)."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[str, set] = defaultdict(set)
    for row in check_results(results):
        if row.scenario != scenario:
            continue
        seeds[row.method].add(row.seed)
        if row.value is not None:
            values[row.method][row.metric].append(row.value)
    board = []
    for method in seeds:
        entry: dict[str, Any] = {"method": method, "role": _role(method), "seeds": len(seeds[method])}
        for metric, vals in values[method].items():
            entry[metric] = float(np.mean(vals))
        board.append(entry)

    def order(entry: dict[str, Any]) -> tuple:
        rank = {"oracle": 0, "unlearner": 1, "original": 2}[entry["role"]]
        fq = entry.get("forget_quality")
        return rank, -(fq if fq is not None else -1.0), entry["method"]

    return sorted(board, key=order)


def tofu_chart(board: list[dict[str, Any]], *, title: str = "") -> bytes | None:
    """PNG of forget quality (log y) against model utility (x), one labelled point per method."""
    points = [e for e in board if e.get("forget_quality") is not None and e.get("model_utility") is not None]
    if not points:
        return None
    floor = 1e-12
    with _figure(6.4, 4.6) as (fig, (ax,)):
        for entry in points:
            fq = max(entry["forget_quality"], floor)
            marker, colour = {"oracle": ("*", "#009E73"), "original": ("s", "#D55E00")}.get(entry["role"], ("o", "#0072B2"))
            ax.scatter(entry["model_utility"], fq, marker=marker, s=90 if marker == "*" else 40, color=colour, zorder=3)
        ax.set_yscale("log")
        low = min(max(e["forget_quality"], floor) for e in points)
        ax.set_ylim(10 ** math.floor(math.log10(low)) / 3, 3.0)
        ax.axhline(0.05, color="#9aa5b1", linestyle="--", linewidth=0.8)
        ax.text(ax.get_xlim()[0], 0.05, " p = 0.05", va="bottom", fontsize=7, color="#7b8794")
        ax.set_xlabel("model utility (harmonic mean; higher is better)")
        ax.set_ylabel("forget quality (KS p-value vs retain model; log)")
        ax.set_title(title or "forget quality against model utility (TOFU)")
        ax.grid(True, which="major", color="#e4e7eb", linewidth=0.6)
        fig.canvas.draw()  # the final layout, so labels are placed where they will be drawn
        fig.set_layout_engine("none")
        labels = [
            (e["model_utility"], max(e["forget_quality"], floor), display_name(e), e["role"] == "oracle") for e in points
        ]
        place_labels(ax, labels, fontsize=8)  # no label covers another label or a point
        return _png(fig)


def write_tofu_charts(results: dict, out_dir: str | Path) -> list[Path]:
    """``tofu_<scenario>.png`` in ``out_dir`` for every scenario with forget-quality rows."""
    out = []
    scenarios = list(dict.fromkeys(r.scenario for r in check_results(results)))
    for scenario in scenarios:
        png = tofu_chart(lm_leaderboard(results, scenario), title=f"{results.get('suite', '')} / {scenario}")
        if png is not None:
            path = Path(out_dir) / f"tofu_{scenario}.png"
            atomic_write_bytes(path, png)
            out.append(path)
    return out
