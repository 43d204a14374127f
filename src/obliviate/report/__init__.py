"""The benchmark report: the leaderboard as data, matplotlib figures and one self-contained HTML page.

    from obliviate.report import leaderboard, write_report
    rows = leaderboard(results, "random-10pct")   # one dict per method, the oracle first
    path = write_report(results, Path("runs/digits"))   # runs/digits/report.html

``results`` is the results document (schema ``obliviate.results/1``) that ``obliviate bench``
writes as results.json.
"""

from obliviate.report.html import render_report, write_report
from obliviate.report.results import ORACLE, ORIGINAL, SCHEMA, check_results
from obliviate.report.tables import leaderboard

__all__ = ["ORACLE", "ORIGINAL", "SCHEMA", "check_results", "leaderboard", "render_report", "write_report"]
