"""``obliviate bench --suite knowledge``: unlearning real facts of a pretrained model (dispatched from ``cli/core.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from obliviate.cli.common import check_bench_settings, err_console, out_console, writable_folder
from obliviate.errors import InvalidInputError

__all__ = ["bench_knowledge", "print_knowledge_tables"]


def _pct(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{100 * value:.0f}"


def print_knowledge_tables(results: dict) -> None:
    """The scope table and the attack table of every scenario, as rich tables on stdout."""
    from obliviate.report.knowledge import ATTACK_COLUMNS, SCOPE_COLUMNS, knowledge_board

    if not out_console.is_terminal:
        out_console.width = max(out_console.width, 160)
    for scenario in results["config"]["scenarios"]:
        board = knowledge_board(results, scenario)
        table = Table(
            title=f"knowledge ({results['config'].get('model', '?')}) / {scenario}: scope (accuracy %, chance 25)"
        )
        table.add_column("method", no_wrap=True)
        for header, _, _ in SCOPE_COLUMNS:
            table.add_column(header, justify="right")
        for e in board:
            cells = [
                (
                    f"{e[key]:.2f}"
                    if kind == "x" and e.get(key) is not None
                    else f"{e[key]:.1f}"
                    if kind == "f" and e.get(key) is not None
                    else _pct(e.get(key))
                )
                for _, key, kind in SCOPE_COLUMNS
            ]
            label = (
                e["method"]
                + (" (not unlearned)" if e["role"] == "original" else "")
                + (" COLLAPSED" if e.get("collapsed") else "")
            )
            table.add_row(
                label, *cells, style="dim" if e["role"] == "original" else "red" if e.get("collapsed") else None
            )
        out_console.print(table)
        atable = Table(title=f"{scenario}: held-out forget MCQ accuracy % after each attack (own = no attack)")
        atable.add_column("method", no_wrap=True)
        for header, _ in ATTACK_COLUMNS:
            atable.add_column(header, justify="right")
        for e in board:
            atable.add_row(e["method"], *[_pct(e.get(key)) for _, key in ATTACK_COLUMNS])
        out_console.print(atable)


def bench_knowledge(
    *,
    model: str | None,
    methods: Sequence[str] | None,
    seeds: int | None,
    scenarios: Sequence[str] | None,
    settings: Mapping[str, Any],
    out: Path | None,
    progress: bool,
) -> None:
    """Run the knowledge suite on ``model`` (default smollm2); write results.json/.csv, the trade-off
    plot and report.html to ``out`` (default ``runs/knowledge-<model>/``); print the scope tables.

    ``scenarios`` may name ``forget-<domain>`` (default ``forget-elements``); ``seeds`` picks the one
    seed's value when given (the suite runs one seed: its cost is the model, not the seed count).
    """
    from obliviate.bench.knowledge import KnowledgeConfig, run_knowledge
    from obliviate.bench.results import write_results
    from obliviate.report import write_report
    from obliviate.report.knowledge import write_knowledge_chart

    model = model or "smollm2"
    check_bench_settings(settings, example="rmu")
    config = KnowledgeConfig()
    if scenarios:
        if len(scenarios) != 1 or not str(scenarios[0]).startswith("forget-"):
            raise InvalidInputError(
                f"--scenario for the knowledge suite is one forget-<domain>, e.g. forget-elements; got {list(scenarios)}."
            )
        domain = str(scenarios[0])[len("forget-") :]
        from obliviate.data.knowledge import KNOWN_DOMAINS, UnknownDomainError

        if domain not in KNOWN_DOMAINS:
            raise UnknownDomainError(domain)
        retain = tuple(d for d in KNOWN_DOMAINS if d != domain and (domain == "elements" or d != "compounds"))
        config = KnowledgeConfig(forget=domain, retain=retain)
    if seeds is not None and (isinstance(seeds, bool) or int(seeds) != 1):
        raise InvalidInputError(
            f"the knowledge suite runs one seed (it costs the model, not the seeds); got --seeds {seeds}."
        )
    label = model if model in ("smollm2",) else Path(model).name or "model"
    out_dir = writable_folder(out or Path("runs") / f"knowledge-{label}")
    results = run_knowledge(model, methods=methods, settings=settings, config=config, show_progress=progress)
    json_path, csv_path = write_results(results, out_dir)
    chart = write_knowledge_chart(results, out_dir)
    report_path = write_report(results, out_dir)
    print_knowledge_tables(results)
    for note in results["config"]["knowledge"]["notes"]:
        err_console.print(f"[dim]note: {note}[/]")
    for failure in results["config"]["failures"]:
        err_console.print(f"[yellow]failed:[/] {failure['scenario']} {failure['method']}: {failure['error']}")
    seconds = results["config"]["knowledge"].get("seconds_total")
    written = ", ".join(f"[bold]{p}[/]" for p in (json_path, csv_path, *chart, report_path))
    out_console.print(f"\nwrote {written}" + (f" ({seconds:.0f} s)" if seconds else ""))
