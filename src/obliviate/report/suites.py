"""One report path for every suite: the results' ``suite`` field picks the tables and charts.

=============  ==========================  =============================================
kind           suites                      what is drawn beside report.html
=============  ==========================  =============================================
classifier     digits, cifar10, ... (any)  (figures inline in the page)
lm             authors                     ``tofu_<scenario>.png``: forget quality vs utility
knowledge      knowledge                   ``knowledge_<scenario>.png``: forget vs keep
=============  ==========================  =============================================

``obliviate bench`` (every suite) and ``obliviate report`` both call :func:`write_suite_report`,
so a suite's run and a later redraw of its results.json give the same files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SUITE_KINDS", "report_kind", "write_suite_report"]

#: suite name -> report kind; every other suite is a classifier suite.
SUITE_KINDS: dict[str, str] = {"authors": "lm", "knowledge": "knowledge"}


def report_kind(results: Mapping[str, Any]) -> str:
    """``"classifier"``, ``"lm"`` or ``"knowledge"``, from the results' ``suite`` (or an explicit ``kind``,
    top level or in ``config``, that a document written by a custom runner may carry)."""
    config = results.get("config") if isinstance(results.get("config"), Mapping) else {}
    kind = results.get("kind") or config.get("kind")
    if kind in ("lm", "knowledge"):
        return kind
    return SUITE_KINDS.get(str(results.get("suite")), "classifier")


def write_suite_report(results: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``report.html`` and the suite's own charts into ``out_dir``; return their paths, the page first."""
    from obliviate.report.html import write_report

    page = write_report(results, out_dir)  # checks the document before anything is written
    kind = report_kind(results)
    if kind == "lm":
        from obliviate.report.lm import write_tofu_charts

        return [page, *write_tofu_charts(dict(results), out_dir)]
    if kind == "knowledge":
        from obliviate.report.knowledge import write_knowledge_chart

        return [page, *write_knowledge_chart(dict(results), out_dir)]
    return [page]
