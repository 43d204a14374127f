"""The knowledge suite's tables and plot: scope per method, attacks, forget against retain accuracy.

The plot puts each model at (retain accuracy, held-out forget MCQ accuracy); each attack is an arrow
from that point to the accuracy the attack recovers (attacks do not change what is measured on the
retain side, so arrows are vertical, fanned out slightly so they stay apart). The ideal method sits
at the bottom right: forget accuracy at chance, retain accuracy kept, arrows short.
Figures are rendered off-screen (Agg).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.bench.results import ORIGINAL
from obliviate.report.plots import _figure, _png, place_labels
from obliviate.report.results import check_results
from obliviate.storage import atomic_write_bytes

__all__ = [
    "SCOPE_COLUMNS",
    "ATTACK_COLUMNS",
    "knowledge_board",
    "knowledge_chart",
    "write_knowledge_chart",
    "is_knowledge_results",
]

# (header, metric, kind): "%" accuracy shown x100, "x" ratio, "f" plain number
SCOPE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("forget MCQ", "forget_mcq_accuracy", "%"),
    ("paraphrase", "forget_paraphrase_accuracy", "%"),
    ("reverse", "forget_reverse_accuracy", "%"),
    ("short answer", "forget_short_accuracy", "%"),
    ("neighbours", "neighbour_accuracy", "%"),
    ("retain", "retain_accuracy", "%"),
    ("retain / orig.", "retain_vs_original", "x"),
    ("perplexity", "perplexity", "f"),
    ("ppl / orig.", "perplexity_vs_original", "x"),
)
ATTACK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("own (held-out)", "heldout_forget_accuracy"),
    ("relearn", "attack_relearn"),
    ("8-bit RTN", "attack_quantize_8bit"),
    ("4-bit RTN", "attack_quantize_4bit"),
    ("in-context", "attack_in_context"),
    ("linear probe", "attack_linear_probe"),
)
_ARROWS = {  # attack metric -> (label, Okabe-Ito colour)
    "attack_relearn": ("relearn", "#D55E00"),
    "attack_quantize_8bit": ("8-bit RTN", "#009E73"),
    "attack_quantize_4bit": ("4-bit RTN", "#0072B2"),
    "attack_in_context": ("in-context", "#CC79A7"),
    "attack_linear_probe": ("linear probe", "#E69F00"),
}


def is_knowledge_results(results: Any) -> bool:
    return isinstance(results, dict) and (
        results.get("suite") == "knowledge" or (results.get("config") or {}).get("kind") == "knowledge"
    )


def knowledge_board(results: dict, scenario: str) -> list[dict[str, Any]]:
    """One entry per method of ``scenario``: ``method``, ``role`` (original / unlearner) and the mean
    over seeds of every metric; ``collapsed`` as a bool. The original first, then the methods by
    forget MCQ accuracy (lowest first), collapsed methods last."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in check_results(results):
        if row.scenario == scenario and row.value is not None:
            values[row.method][row.metric].append(row.value)
        elif row.scenario == scenario:
            values[row.method]  # noqa: B018 - register the method
    board = []
    for method, metrics in values.items():
        entry: dict[str, Any] = {"method": method, "role": "original" if method == ORIGINAL else "unlearner"}
        entry.update({k: float(np.mean(v)) for k, v in metrics.items()})
        entry["collapsed"] = bool(entry.get("collapsed", 0.0) >= 0.5)
        board.append(entry)

    def order(e: dict[str, Any]) -> tuple:
        f = e.get("forget_mcq_accuracy")
        return (e["role"] != "original", e["collapsed"], f if f is not None else 2.0, e["method"])

    return sorted(board, key=order)


def knowledge_chart(board: list[dict[str, Any]], *, title: str = "", chance: float = 0.25) -> bytes | None:
    """PNG: held-out forget MCQ accuracy (y) against retain accuracy (x), attacks as arrows."""
    points = [e for e in board if e.get("heldout_forget_accuracy") is not None and e.get("retain_accuracy") is not None]
    if not points:
        return None
    original = next((e for e in points if e["role"] == "original"), None)
    with _figure(7.2, 5.0) as (fig, (ax,)):
        ax.axhline(chance, color="#9aa5b1", linestyle="--", linewidth=0.8)
        ax.text(0.01, chance, " chance", va="bottom", fontsize=7.5, color="#7b8794", transform=ax.get_yaxis_transform())
        if original is not None:
            ax.axvline(0.95 * original["retain_accuracy"], color="#9aa5b1", linestyle=":", linewidth=0.8)
            ax.text(  # along the line, at the bottom: the original's label sits at the top
                0.95 * original["retain_accuracy"],
                0.0,
                "0.95\u00d7 original retain ",
                rotation=90,
                fontsize=7,
                color="#7b8794",
                ha="right",
                va="bottom",
            )
        used: dict[str, str] = {}
        labels: dict[tuple[float, float], list[str]] = {}
        whiskers: list[tuple[float, float, float]] = []  # the attack arrows: labels keep clear of them
        for e in points:
            x, y = e["retain_accuracy"], e["heldout_forget_accuracy"]
            keys = [k for k in _ARROWS if e.get(k) is not None]
            for i, key in enumerate(keys):
                label, colour = _ARROWS[key]
                dx = (i - (len(keys) - 1) / 2) * 0.008
                ax.annotate(
                    "",
                    xy=(x + dx, e[key]),
                    xytext=(x + dx, y),
                    arrowprops={
                        "arrowstyle": "-|>",
                        "color": colour,
                        "lw": 1.1,
                        "alpha": 0.85,
                        "shrinkA": 0,
                        "shrinkB": 0,
                    },
                )
                used[label] = colour
                whiskers.append((x + dx, min(y, e[key]), max(y, e[key])))
            marker, colour = (
                ("s", "#52606d")
                if e["role"] == "original"
                else ("X", "#c81e1e")
                if e["collapsed"]
                else ("o", "#1f2933")
            )
            ax.scatter([x], [y], marker=marker, s=48, color=colour, zorder=4)
            name = e["method"] + (" (not unlearned)" if e["role"] == "original" else "")
            name += " \u2014 collapsed" if e["collapsed"] else ""
            labels.setdefault((round(x, 3), round(y, 3)), []).append(name)
        from matplotlib.lines import Line2D

        handles = [Line2D([0], [0], color=c, lw=1.5, marker=">", markersize=5, label=lbl) for lbl, c in used.items()]
        if handles:
            ax.legend(
                handles=handles,
                title="attack (arrow: as given \u2192 attacked)",
                loc="upper center",
                bbox_to_anchor=(0.5, -0.13),
                ncols=min(len(handles), 5),
                fontsize=7.5,
                title_fontsize=7.5,
                frameon=False,
            )
        ax.set_xlim(-0.02, 1.05)
        ax.set_ylim(-0.02, 1.08)
        ax.set_xlabel("retain-domain MCQ accuracy (higher is better)")
        ax.set_ylabel("held-out forget MCQ accuracy (lower is better)")
        ax.set_title(title or "forget against retain accuracy, with attacks")
        ax.grid(True, color="#e4e7eb", linewidth=0.6)
        fig.canvas.draw()  # the final layout, so labels are placed where they will be drawn
        fig.set_layout_engine("none")
        # models at the same point share one label; no label covers another label, a point or an arrow
        place_labels(ax, [(x, y, ", ".join(names), False) for (x, y), names in labels.items()], whiskers, fontsize=8)
        return _png(fig)


def write_knowledge_chart(results: dict, out_dir: str | Path) -> list[Path]:
    """``knowledge_<scenario>.png`` in ``out_dir`` for every scenario."""
    out = []
    for scenario in dict.fromkeys(r.scenario for r in check_results(results)):
        png = knowledge_chart(knowledge_board(results, scenario), title=f"knowledge / {scenario}")
        if png is not None:
            path = Path(out_dir) / f"knowledge_{scenario}.png"
            atomic_write_bytes(path, png)
            out.append(path)
    return out
