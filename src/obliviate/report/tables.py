"""The leaderboard: one row per method, aggregated over seeds and compared with the oracle.

Pure data (a list of flat dicts), so the command line can print it and the HTML page can
render it from the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from obliviate.errors import InvalidInputError
from obliviate.report.columns import ORDER, metric_info
from obliviate.report.results import ORACLE, ORIGINAL, Row, check_results, scenarios_of

__all__ = ["leaderboard", "board_from_rows", "metrics_in"]


def leaderboard(results: dict, scenario: str) -> list[dict[str, Any]]:
    """The leaderboard of ``scenario``: one dict per method, the oracle first, the original last.

    Keys of each row:

    - ``method``; ``role``: ``"oracle"`` (method ``retrain``, the reference every gap is taken
      against), ``"original"`` (the model before unlearning, shown for scale) or ``"unlearner"``;
      ``rank``: 1, 2, ... for unlearners by Avg. Gap, ``None`` for the two references;
      ``seeds``: how many seeds the method has rows for.
    - for every metric ``m`` of the scenario: ``m`` (the mean over seeds, in the document's units:
      accuracies as fractions), ``m_std`` (sample standard deviation over seeds, ddof=1; ``None``
      with fewer than two values) and, except for ``avg_gap``, ``seconds`` and ``efficiency``,
      ``m_gap`` = mean(method) - mean(retrain), in percentage points for the fraction metrics
      (forget/retain/test accuracy, MIA-Efficacy). Missing values are ``None``.
    - ``time_fraction``: the median over seeds of (method seconds / the oracle's seconds on the same
      seed): the cost as a share of retraining, robust to one slow run on a shared machine.

    Unlearners are sorted by mean ``avg_gap`` ascending (methods without one after them, then by
    name). The ``oracle_*`` metrics that :func:`obliviate.evaluation.evaluate` attaches to every row
    repeat the retrain row and are left out.
    """
    rows = check_results(results)
    return board_from_rows(rows, scenario)


def metrics_in(rows: tuple[Row, ...], scenario: str) -> list[str]:
    """The scenario's metrics: the known ones in their canonical order, then the rest by name."""
    present = {r.metric for r in rows if r.scenario == scenario and not r.metric.startswith("oracle_")}
    return [m for m in ORDER if m in present] + sorted(present - set(ORDER))


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        mean = float(arr.mean())
        std = float(arr.std(ddof=1)) if len(arr) > 1 else None
    return (None if math.isnan(mean) else mean), (None if std is None or math.isnan(std) else std)


def _role(method: str) -> str:
    return "oracle" if method == ORACLE else "original" if method == ORIGINAL else "unlearner"


def board_from_rows(rows: tuple[Row, ...], scenario: str) -> list[dict[str, Any]]:
    """:func:`leaderboard` on already checked rows."""
    known = scenarios_of(rows)
    if scenario not in known:
        raise InvalidInputError(f"no rows for scenario {scenario!r}; the results hold {', '.join(map(repr, known))}.")
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[str, set[int]] = defaultdict(set)
    seconds_by_seed: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r.scenario != scenario:
            continue
        if r.seed is not None:
            seeds[r.method].add(r.seed)
            if r.metric == "seconds" and r.value is not None:
                seconds_by_seed[r.method][r.seed] = r.value
        if r.value is not None:
            values[r.method][r.metric].append(r.value)
        else:
            values[r.method].setdefault(r.metric, [])
    if ORACLE not in values:
        raise InvalidInputError(
            f"scenario {scenario!r} has no rows for the oracle (method {ORACLE!r}), the model retrained without "
            f"the forget set: every gap is measured against it. Methods present: {', '.join(sorted(values))}. "
            "Include the retrain rows (obliviate bench always runs it)."
        )
    metrics = metrics_in(rows, scenario)
    stats = {m: {k: _mean_std(values[m].get(k, [])) for k in metrics} for m in values}
    oracle = stats[ORACLE]
    board = []
    for method, per_metric in stats.items():
        entry: dict[str, Any] = {"method": method, "role": _role(method), "rank": None, "seeds": len(seeds[method])}
        for key in metrics:
            info = metric_info(key)
            mean, std = per_metric[key]
            entry[key], entry[f"{key}_std"] = mean, std
            if info.gap:
                ref = oracle[key][0]
                gap = None if mean is None or ref is None else (mean - ref) * (100.0 if info.fraction else 1.0)
                entry[f"{key}_gap"] = None if gap is not None and math.isnan(gap) else gap
        ref_by_seed = seconds_by_seed[ORACLE]
        ratios = [t / ref_by_seed[seed] for seed, t in seconds_by_seed[method].items() if ref_by_seed.get(seed)]
        entry["time_fraction"] = float(np.median(ratios)) if ratios else None
        board.append(entry)

    def order(entry: dict[str, Any]) -> tuple:
        group = {"oracle": 0, "unlearner": 1, "original": 2}[entry["role"]]
        gap = entry.get("avg_gap")
        return (group, gap is None, gap if gap is not None else 0.0, entry["method"])

    board.sort(key=order)
    for rank, entry in enumerate((e for e in board if e["role"] == "unlearner"), start=1):
        entry["rank"] = rank
    return board
