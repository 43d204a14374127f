"""What every ``obliviate bench`` run and every ``obliviate report`` leaves behind, whatever the suite.

:func:`write_outputs` writes results.json/.csv, report.html and the suite's charts
(:func:`obliviate.report.suites.write_suite_report`); :func:`print_tables` prints the suite's
tables (the classifier leaderboard, the LM leaderboard or the knowledge scope and attack tables),
chosen by :func:`obliviate.report.suites.report_kind` on the results' ``suite`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from obliviate.cli.common import out_console

__all__ = ["print_tables", "write_outputs", "written"]


def print_tables(results: Mapping[str, Any]) -> None:
    """The suite's tables of every scenario, on stdout."""
    from obliviate.report.suites import report_kind

    kind = report_kind(results)
    if kind == "knowledge":
        from obliviate.cli.knowledge import print_knowledge_tables

        print_knowledge_tables(dict(results))
        return
    if kind == "lm":
        from obliviate.cli.lm import print_lm_leaderboard as print_one
    else:
        from obliviate.cli.core import _print_leaderboard as print_one
    scenarios = (results.get("config") or {}).get("scenarios") or {}
    if not scenarios:
        scenarios = dict.fromkeys(row["scenario"] for row in results["rows"])
    for name in scenarios:
        print_one(dict(results), name)


def write_outputs(results: Mapping[str, Any], out_dir: Path, *, with_results: bool = True) -> list[Path]:
    """results.json and results.csv (unless ``with_results`` is False: a redraw), report.html and the suite's charts."""
    from obliviate.report.suites import write_suite_report
    from obliviate.results import write_results

    paths: list[Path] = list(write_results(dict(results), out_dir)) if with_results else []
    return paths + write_suite_report(results, out_dir)


def written(paths: list[Path]) -> None:
    out_console.print("\nwrote " + ", ".join(f"[bold]{p}[/]" for p in paths))
