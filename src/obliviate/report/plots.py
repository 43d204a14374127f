"""Figures of a scenario's leaderboard, rendered off-screen to PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never
through ``pyplot``: no display, no global backend switch, nothing left open. PNG metadata
carries no software version, so the same leaderboard gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from matplotlib.transforms import Bbox

from obliviate.report.columns import metric_info

__all__ = [
    "gap_chart", "tradeoff_chart", "nips_chart", "epsilon_chart", "confidence_histogram", "epsilon_limit",
    "display_name", "GAP_METRICS", "DPI",
]

#: The four metrics of the Avg. Gap, in the order the bars are drawn.
GAP_METRICS: tuple[str, ...] = ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy")
DPI = 150

# Okabe-Ito colour-blind-safe palette.
_COLOURS = {
    "forget_accuracy": "#D55E00",
    "retain_accuracy": "#0072B2",
    "test_accuracy": "#009E73",
    "mia_efficacy": "#CC79A7",
}
_INK, _MUTED, _GRID, _POINT, _BUDGET = "#1f2933", "#7b8794", "#e4e7eb", "#0072B2", "#e3f8ec"
_STYLE = {
    "font.size": 9.5,
    "font.family": "DejaVu Sans",
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": _INK,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlecolor": _INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#52606d",
    "ytick.color": _INK,
    "legend.fontsize": 9,
}


def display_name(entry: dict[str, Any]) -> str:
    """A method's label in figures: the references say what they are."""
    if entry["role"] == "oracle":
        return f"{entry['method']} (oracle)"
    if entry["role"] == "original":
        return f"{entry['method']} (not unlearned)"
    return entry["method"]


@contextmanager
def _figure(width: float, height: float, ncols: int = 1) -> Iterator[tuple[Figure, list]]:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
        yield fig, axes


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _method_rows(ax, entries: Sequence[dict[str, Any]], series: int) -> None:
    """One row per method, top to bottom in leaderboard order; references shaded; legend on top."""
    ax.set_yticks(range(len(entries)), labels=[display_name(e) for e in entries])
    ax.set_ylim(len(entries) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color=_GRID, lw=0.8, zorder=0)
    for i, entry in enumerate(entries):
        if entry["role"] != "unlearner":
            ax.axhspan(i - 0.5, i + 0.5, color="#f5f7fa", zorder=0, lw=0)
    for label, entry in zip(ax.get_yticklabels(), entries):
        if entry["role"] != "unlearner":
            label.set_color(_MUTED)
            label.set_fontstyle("italic")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=series, frameon=False, handlelength=1.2)


def gap_chart(board: Sequence[dict[str, Any]]) -> bytes | None:
    """Grouped horizontal bars: per method, the gap to the oracle of forget, retain and test
    accuracy and MIA-Efficacy, in points, with error bars of one standard deviation over seeds.
    The oracle itself (all zeros) is the vertical line."""
    entries = [e for e in board if e["role"] != "oracle"]
    keys = [k for k in GAP_METRICS if any(e.get(f"{k}_gap") is not None for e in entries)]
    if not entries or not keys:
        return None
    n, k = len(entries), len(keys)
    height = 0.82 / k
    bars = []  # (y, gap, err, key) of every bar
    for j, key in enumerate(keys):
        scale = 100.0 if metric_info(key).fraction else 1.0
        for i, e in enumerate(entries):
            std = e.get(f"{key}_std")
            y = i + (j - (k - 1) / 2) * height
            bars.append((y, _num(e.get(f"{key}_gap")), scale * _num(std) if std else 0.0, key))
    with _figure(9.6, 1.35 + 0.3 * n * max(k, 2) / 2) as (fig, (ax,)):
        for key in keys:
            info = metric_info(key)
            mine = [b for b in bars if b[3] == key]
            ys, gaps, errs = [b[0] for b in mine], [b[1] for b in mine], [b[2] for b in mine]
            ax.barh(
                ys,
                gaps,
                height=height * 0.9,
                color=_COLOURS.get(key, _POINT),
                label=info.label.replace("acc.", "accuracy"),
                xerr=errs,
                error_kw={"elinewidth": 0.8, "capsize": 1.6, "ecolor": "#3e4c59", "capthick": 0.8},
                zorder=3,
            )
        ax.axvline(0, color=_INK, lw=1.1, zorder=4)
        _clip_to_unlearners(ax, entries, bars, height)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.0f}" if v else "0"))
        ax.set_xlabel("method \u2212 oracle (percentage points); 0 = as the model retrained without the forget set")
        _method_rows(ax, entries, k)
        return _png(fig)


def _clip_to_unlearners(ax, entries: Sequence[dict[str, Any]], bars: list[tuple], height: float) -> None:
    """Fit the x range to the unlearners' bars; a reference bar beyond it (the original is often
    ~100 points off when a whole class is forgotten) is cut at the edge and labelled with its value."""
    focus = [b for b in bars if entries[round(b[0])]["role"] == "unlearner" and not math.isnan(b[1])]
    every = [b for b in bars if not math.isnan(b[1])]
    if not focus or not every:
        return
    lo = min(0.0, min(g - err for _, g, err, _ in focus))
    hi = max(0.0, max(g + err for _, g, err, _ in focus))
    pad = 0.08 * max(hi - lo, 1.0)
    lo, hi = lo - pad, hi + pad
    outside = [b for b in every if b[1] < lo or b[1] > hi]
    if not outside:
        return
    ax.set_xlim(lo, hi)
    for y, gap, _, _ in outside:
        edge, ha = (hi, "right") if gap > hi else (lo, "left")
        ax.text(edge, y, f" {gap:+.1f} \u25b8 " if gap > hi else f" \u25c2 {gap:+.1f} ", ha=ha, va="center",
                fontsize=7.5, color="white", fontweight="bold", zorder=6, clip_on=True)


_TIME_TICKS = tuple(m * 10.0**e for e in range(-5, 4) for m in (1, 2, 5))


def _time_formatter(v: float, _pos: int) -> str:
    if v <= 0:
        return ""
    return f"{v:g}\u00d7"


# Directions tried for a label, nearest first: right-up, right-down, left-up, left-down, up, down, right, left.
_DIRECTIONS = ((0.87, 0.5), (0.87, -0.5), (-0.87, 0.5), (-0.87, -0.5), (0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0))


def _overlap(box: Bbox, others: Sequence[Bbox]) -> float:
    total = 0.0
    for other in others:
        both = Bbox.intersection(box, other)
        if both is not None:
            total += both.width * both.height
    return total


def place_labels(
    ax,
    points: Sequence[tuple[float, float, str, bool]],
    whiskers: Sequence[tuple[float, float, float]] = (),
    *,
    fontsize: float = 8.5,
) -> None:
    """Label each point where its text covers no other label or marker, nearest spot first; labels
    pushed further out get a thin leader line. Greedy, points in y order; where every spot is
    taken, the one with the least overlap wins.

    ``points``: (x, y, text, bold) in data coordinates; ``whiskers``: (x, y_low, y_high) of the
    error bars, kept clear as well. Needs the final layout: the figure is drawn and its layout
    engine switched off first. Every trade-off plot of the report labels its points with it."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px_per_pt = ax.figure.dpi / 72.0
    taken = []
    for x, y, _, _ in points:
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - 5, py - 5, px + 5, py + 5))
    for x, low, high in whiskers:
        (px, p0), (_, p1) = ax.transData.transform([(x, low), (x, high)])
        taken.append(Bbox.from_extents(px - 2, min(p0, p1), px + 2, max(p0, p1)))
    for x, y, name, bold in sorted(points, key=lambda p: (p[1], p[0])):
        style = {"fontsize": fontsize, "color": _INK, "fontweight": "bold" if bold else "normal", "zorder": 6}
        probe = ax.text(0, 0, name, **style)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        width, height = extent.width, extent.height
        px, py = ax.transData.transform((x, y))
        best = None  # (overlap, order, box, offset in points, ha, va)
        for order, (radius, (cx, cy)) in enumerate((r, d) for r in (8, 16, 26, 38, 52, 68) for d in _DIRECTIONS):
            dx, dy = radius * cx, radius * cy * 0.8
            ax_px, ay_px = px + dx * px_per_pt, py + dy * px_per_pt
            ha = "left" if cx > 0.3 else "right" if cx < -0.3 else "center"
            va = "bottom" if cy > 0.3 else "top" if cy < -0.3 else "center"
            x0 = ax_px if ha == "left" else ax_px - width if ha == "right" else ax_px - width / 2
            y0 = ay_px if va == "bottom" else ay_px - height if va == "top" else ay_px - height / 2
            box = Bbox.from_bounds(x0, y0, width, height)
            outside = not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))
            score = (outside, _overlap(box, taken), order)
            if best is None or score < best[0]:
                best = (score, box, (dx, dy), ha, va, radius)
            if score[:2] == (False, 0.0):
                break
        _, box, offset, ha, va, radius = best
        arrow = {"arrowstyle": "-", "color": _MUTED, "lw": 0.6, "shrinkA": 1, "shrinkB": 4} if radius > 8 else None
        ax.annotate(name, (x, y), xytext=offset, textcoords="offset points", ha=ha, va=va, arrowprops=arrow, **style)
        taken.append(box)


def tradeoff_chart(board: Sequence[dict[str, Any]]) -> bytes | None:
    """Forget quality against cost: x = time as a multiple of retraining (log scale), y = Avg. Gap
    (lower is better) and, where present, the NeurIPS 2023 score (higher is better); one labelled
    point per method, the oracle a star at 1x. Methods with no measurable time are left out."""
    panels = [k for k in ("avg_gap", "nips_score") if any(e.get(k) is not None for e in board)]
    if not panels:
        return None

    def timed(entry: dict[str, Any], key: str) -> bool:
        t = entry.get("time_fraction")
        return t is not None and math.isfinite(t) and t > 0 and entry.get(key) is not None

    if not any(timed(e, k) for e in board for k in panels):
        return None
    with _figure(5.2 * len(panels) + 0.4, 4.9, ncols=len(panels)) as (fig, axes):
        labelled = []
        for ax, key in zip(axes, panels):
            info = metric_info(key)
            shown = [e for e in board if timed(e, key)]
            xs = np.array([e["time_fraction"] for e in shown])
            ys = np.array([e[key] for e in shown])
            lo, hi = min(xs.min(), 1.0), max(xs.max(), 1.0)
            ax.set_xscale("log")
            ax.set_xlim(lo / 2.2, hi * 2.2)
            if lo / 2.2 < 0.2:
                ax.axvspan(lo / 10, 0.2, color=_BUDGET, lw=0, zorder=0)
            ax.axvline(1.0, color=_MUTED, lw=0.9, ls="--", zorder=1)
            for e, x, y in zip(shown, xs, ys):
                std = e.get(f"{key}_std")
                if e["role"] == "oracle":
                    ax.scatter([x], [y], marker="*", s=190, color=_INK, zorder=5)
                else:
                    colour = _MUTED if e["role"] == "original" else _POINT
                    ax.errorbar([x], [y], yerr=[std or 0.0], fmt="o", ms=6.5, color=colour, mec="white", mew=0.8,
                                elinewidth=0.8, capsize=2, ecolor=colour + "66", zorder=5)
            if key == "avg_gap":
                ax.axhline(0.0, color=_INK, lw=0.8, zorder=1)
                ax.set_ylim(bottom=min(-0.04 * max(ys.max(), 1.0), ys.min()))
                ylabel = f"{info.label} to the oracle (points) \u2193 lower is better"
            else:
                ylabel = f"{info.label} \u2191 higher is better"
            ax.margins(y=0.12)
            ticks = [t for t in _TIME_TICKS if lo / 2.2 <= t <= hi * 2.2]
            if hi / lo > 100:  # many decades: 1, 10, 100 ... only
                ticks = [t for t in ticks if abs(math.log10(t) - round(math.log10(t))) < 1e-9]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(_time_formatter))
            ax.grid(color=_GRID, lw=0.8, zorder=0)
            ax.set_xlabel("time as a multiple of retraining (log scale) \u2190 cheaper")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{info.label} vs. cost", loc="left")
            labels = [(x, y, display_name(e), e["role"] == "oracle") for e, x, y in zip(shown, xs, ys)]
            whiskers = [(x, y - e[f"{key}_std"], y + e[f"{key}_std"]) for e, x, y in zip(shown, xs, ys)
                        if e.get(f"{key}_std") and e["role"] != "oracle"]
            labelled.append((ax, labels, whiskers))
        handles = [
            Line2D([], [], ls="", marker="*", ms=12, color=_INK, label="oracle (retrain), 1\u00d7 by definition"),
            Line2D([], [], ls="", marker="o", ms=6.5, color=_POINT, label="unlearning method (\u00b1 1 sd over seeds)"),
            Patch(color=_BUDGET, label="NeurIPS 2023 time budget (\u2264 0.2\u00d7 retraining)"),
        ]
        if any(e["role"] == "original" and timed(e, k) for e in board for k in panels):
            handles.insert(2, Line2D([], [], ls="", marker="o", ms=6.5, color=_MUTED, label="original (not unlearned)"))
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        fig.canvas.draw()  # fixes the constrained layout so labels are placed in final coordinates
        fig.set_layout_engine("none")
        for ax, labels, whiskers in labelled:
            place_labels(ax, labels, whiskers)
        return _png(fig)


def nips_chart(board: Sequence[dict[str, Any]]) -> bytes | None:
    """Horizontal bars of the NeurIPS 2023 forget score F and final score per method."""
    keys = [k for k in ("nips_forget_score", "nips_score") if any(e.get(k) is not None for e in board)]
    entries = [e for e in board if any(e.get(k) is not None for k in keys)]
    if not keys or not entries:
        return None
    n, k = len(entries), len(keys)
    height = 0.8 / k
    colours = {"nips_forget_score": "#9ecae1", "nips_score": "#08519c"}
    top = max(1.0, max(_num(e.get(key)) for e in entries for key in keys if e.get(key) is not None))
    with _figure(9.6, 1.3 + 0.3 * n * max(k, 2) / 2) as (fig, (ax,)):
        for j, key in enumerate(keys):
            ys = np.arange(n) + (j - (k - 1) / 2) * height
            vals = [_num(e.get(key)) for e in entries]
            bars = ax.barh(ys, vals, height=height * 0.9, color=colours[key], label=metric_info(key).label, zorder=3)
            ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.3f}" for v in vals], padding=3,
                         fontsize=7.5, color="#3e4c59")
        ax.set_xlim(0, top * 1.1)
        ax.set_xlabel("score (1 = indistinguishable from retraining, at equal accuracy) \u2192 higher is better")
        _method_rows(ax, entries, k)
        return _png(fig)


# ---------------------------------------------------------------- the per-example view

#: Colours of the two samples in a confidence histogram.
_UNLEARNED, _RETRAINED = "#D55E00", "#0072B2"


def epsilon_limit(num_models: int) -> float:
    """``ceil(ln(N - 1))``: the challenge's last scoring bucket ends here (0 points beyond)."""
    return float(math.ceil(math.log(max(int(num_models) - 1, 1))))


def epsilon_chart(methods: Sequence[tuple[str, Sequence[float]]], num_models: int) -> bytes | None:
    """Share of each method's forget examples per epsilon bucket (width 0.5), as a heatmap.

    ``methods``: (label, per-example epsilons) in display order; ``num_models`` fixes the last
    scored bucket, ``ceil(ln(N - 1))``; everything at or beyond it shares the last column.
    """
    methods = [(label, np.asarray(eps, dtype=float)) for label, eps in methods if len(eps)]
    if not methods:
        return None
    limit = epsilon_limit(num_models)
    edges = np.arange(0.0, limit + 0.5, 0.5)
    columns = [f"{lo:g}\u2013{lo + 0.5:g}" for lo in edges[:-1]] + [f"\u2265 {limit:g}"]
    shares = np.array([np.bincount(np.minimum(np.floor(2 * eps).astype(int), len(columns) - 1),
                                   minlength=len(columns)) / len(eps) for _, eps in methods])
    with _figure(min(max(6.4, 2.6 + 0.5 * len(columns)), 9.6), 1.3 + 0.3 * len(methods)) as (fig, (ax,)):
        ax.imshow(shares, aspect="auto", cmap="Blues", vmin=0.0, vmax=1.0)
        for (r, c), share in np.ndenumerate(shares):
            if share > 0:
                ax.text(c, r, f"{100 * share:.0f}", ha="center", va="center", fontsize=7.5,
                        color="white" if share > 0.55 else _INK)
        ax.set_yticks(range(len(methods)), [label for label, _ in methods])
        ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
        ax.set_xlabel(f"per-example epsilon ({num_models} models a side; 0 points from {limit:g} on)")
        ax.set_title("% of the forget examples per epsilon bucket", loc="left")
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        return _png(fig)


def confidence_histogram(example: dict[str, Any], method: str) -> bytes | None:
    """Histograms of one forget example's logit-scaled confidence under the unlearned and the retrained models."""
    unlearned = np.asarray(example.get("unlearned", []), dtype=float)
    retrained = np.asarray(example.get("retrained", []), dtype=float)
    if unlearned.size < 2 or retrained.size < 2:
        return None
    joint = np.concatenate([unlearned, retrained])
    bins = np.linspace(joint.min(), joint.max() + 1e-9, min(40, max(8, joint.size // 8)))
    with _figure(7.2, 2.9) as (fig, (ax,)):
        ax.hist(retrained, bins=bins, color=_RETRAINED, alpha=0.55, label=f"retrained ({retrained.size} models)")
        ax.hist(unlearned, bins=bins, color=_UNLEARNED, alpha=0.55, label=f"{method} ({unlearned.size} models)")
        ax.set_xlabel("logit-scaled confidence  log p_y \u2212 log(1 \u2212 p_y)")
        ax.set_ylabel("models")
        ax.set_title(f"Forget example {example.get('id')}: unlearned vs retrained", loc="left")
        ax.legend(frameon=False)
        return _png(fig)
