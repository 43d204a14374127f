"""``obliviate bench --suite authors``: the language-model suite (dispatched from ``cli/core.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from obliviate.cli.common import check_bench_settings, err_console, out_console, writable_folder

__all__ = ["bench_lm"]


def _fmt(value: float | None, kind: str) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if kind == "e":
        return f"{value:.2g}"
    if kind == "x":
        return f"{value:.2f}"
    if kind == "p":
        return f"{value:.0f}"
    return f"{value:.3f}"


def print_lm_leaderboard(results: dict, scenario: str) -> None:
    """The LM leaderboard of ``scenario`` as a rich table on stdout."""
    from obliviate.report.lm import LM_COLUMNS, lm_leaderboard

    if not out_console.is_terminal:
        out_console.width = max(out_console.width, 160)
    table = Table(title=f"{results['suite']} ({results['config'].get('model', '?')}) / {scenario}: against the retain model")
    table.add_column("method", no_wrap=True)
    for header, _, _ in LM_COLUMNS:
        table.add_column(header, justify="right")
    for entry in lm_leaderboard(results, scenario):
        cells = [_fmt(entry.get(key), kind) for _, key, kind in LM_COLUMNS]
        if entry["role"] == "oracle":
            table.add_row(f"{entry['method']} (oracle)", *cells, style="bold cyan")
        elif entry["role"] == "original":
            table.add_row(f"{entry['method']} (target)", *cells, style="dim")
        else:
            table.add_row(entry["method"], *cells)
    out_console.print(table)


def bench_lm(
    *,
    model: str,
    methods: Sequence[str] | None,
    seeds: int | None,
    scenarios: Sequence[str] | None,
    settings: Mapping[str, Any],
    out: Path | None,
    progress: bool,
) -> None:
    """Run the authors suite on ``model`` (tiny, smollm2 or a folder); write results.json/.csv, report.html
    and the TOFU plots to ``out`` (default ``runs/authors-<model>/``) and print the leaderboards
    (:mod:`obliviate.cli.outputs`, the path every suite takes)."""
    from obliviate.bench.lm import run_authors
    from obliviate.cli.outputs import print_tables, write_outputs, written

    check_bench_settings(settings, example="npo")
    label = model if model in ("tiny", "smollm2") else Path(model).name or "model"
    out_dir = writable_folder(out or Path("runs") / f"authors-{label}")
    results = run_authors(
        model,
        methods=methods,
        splits=tuple(scenarios) if scenarios else None,
        seeds=1 if seeds is None else int(seeds),
        settings=settings,
        show_progress=progress,
    )
    paths = write_outputs(results, out_dir)
    print_tables(results)
    for failure in results["config"]["failures"]:
        err_console.print(f"[yellow]failed:[/] {failure['scenario']} seed {failure['seed']} {failure['method']}: {failure['error']}")
    written(paths)
