"""Checking a results document (``obliviate.results/1``) before anything is drawn from it.

The schema and its row checks are :mod:`obliviate.results`'s; the report adds what only it knows:
which metrics are stored as fractions in [0, 1] (:mod:`obliviate.report.columns`), whose values
must lie in that range.
"""

from __future__ import annotations

from typing import Any

from obliviate import results as _schema
from obliviate.report.columns import metric_info
from obliviate.results import ORACLE, ORIGINAL, SCHEMA, Row, scenarios_of

__all__ = ["SCHEMA", "ORACLE", "ORIGINAL", "Row", "check_results", "scenarios_of"]


def _is_fraction(metric: str) -> bool:
    return metric_info(metric).fraction


def check_results(results: Any) -> tuple[Row, ...]:
    """Validate a results document, fraction metrics included; return its rows (:func:`obliviate.results.check_results`)."""
    return _schema.check_results(results, is_fraction=_is_fraction)
