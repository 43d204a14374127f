"""Checking a results document (``obliviate.results/1``) before anything is drawn from it.

The document (written by :mod:`obliviate.bench.results`) is a dict with ``schema``, ``suite``,
``created``, ``versions``, ``config`` and tidy ``rows`` of (scenario, method, seed, metric,
value). A ``null`` value is a metric that does not apply (kept out of means); a ``null`` seed
marks a metric computed over all seeds (the NeurIPS 2023 scores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

from obliviate.bench.results import ORACLE, ORIGINAL, SCHEMA
from obliviate.errors import InvalidInputError
from obliviate.report.columns import metric_info

__all__ = ["SCHEMA", "ORACLE", "ORIGINAL", "Row", "check_results", "scenarios_of"]


_FIELDS = ("scenario", "method", "seed", "metric", "value")


@dataclass(frozen=True)
class Row:
    scenario: str
    method: str
    seed: int | None
    metric: str
    value: float | None


def _where(i: int, row: Mapping[str, Any]) -> str:
    parts = [f"{k}={row[k]!r}" for k in ("scenario", "method", "seed", "metric") if k in row]
    return f"rows[{i}] ({', '.join(parts)})" if parts else f"rows[{i}]"


def _check_row(i: int, row: Any) -> Row:
    if not isinstance(row, Mapping):
        raise InvalidInputError(
            f"rows[{i}] is a {type(row).__name__}, expected an object with keys {', '.join(_FIELDS)}."
        )
    missing = [k for k in _FIELDS if k not in row]
    if missing:
        raise InvalidInputError(
            f"{_where(i, row)} lacks {', '.join(repr(k) for k in missing)}: every row needs "
            f"{', '.join(_FIELDS)} (seed null for metrics over all seeds, value null where a metric does not apply)."
        )
    for key in ("scenario", "method", "metric"):
        if not isinstance(row[key], str) or not row[key]:
            raise InvalidInputError(f"{_where(i, row)}: {key} must be a non-empty string, got {row[key]!r}.")
    seed = row["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInputError(f"{_where(i, row)}: seed must be an integer or null, got {seed!r}.")
    value = row["value"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
        raise InvalidInputError(f"{_where(i, row)}: value must be a number or null, got {value!r}.")
    value = None if value is None or math.isnan(float(value)) else float(value)
    if value is not None and metric_info(row["metric"]).fraction and not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"{_where(i, row)}: value {value:g} is outside [0, 1]. {row['metric']} is stored as a fraction; "
            "divide percentages by 100."
        )
    return Row(row["scenario"], row["method"], seed, row["metric"], value)


def check_results(results: Any) -> tuple[Row, ...]:
    """Validate a results document; return its rows. Raises InvalidInputError naming the problem."""
    if not isinstance(results, Mapping):
        raise InvalidInputError(
            f"results must be the results document (a dict parsed from results.json), got {type(results).__name__}."
        )
    schema = results.get("schema")
    if schema != SCHEMA:
        raise InvalidInputError(
            f"results schema is {schema!r}, expected {SCHEMA!r}. The report reads documents written by "
            "`obliviate bench`; re-run the benchmark or set the 'schema' field of a document in that format."
        )
    if not isinstance(results.get("suite"), str):
        raise InvalidInputError(f"results 'suite' must be the suite's name (a string), got {results.get('suite')!r}.")
    for key, kind in (("versions", Mapping), ("config", Mapping), ("created", str)):
        if key in results and results[key] is not None and not isinstance(results[key], kind):
            raise InvalidInputError(
                f"results {key!r} must be {'an object' if kind is Mapping else 'a string'}, "
                f"got {type(results[key]).__name__}."
            )
    rows = results.get("rows")
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError(
            "results 'rows' must be a non-empty list of {scenario, method, seed, metric, value} rows; "
            f"got {'an empty list' if rows == [] else repr(type(rows).__name__)}. Run the benchmark first."
        )
    checked = tuple(_check_row(i, row) for i, row in enumerate(rows))
    seen: dict[tuple, int] = {}
    for i, row in enumerate(checked):
        key = (row.scenario, row.method, row.seed, row.metric)
        if key in seen:
            raise InvalidInputError(
                f"rows[{seen[key]}] and rows[{i}] both give {row.metric} of {row.method!r} in {row.scenario!r} "
                f"for seed {row.seed}: each (scenario, method, seed, metric) may appear once; drop the duplicate."
            )
        seen[key] = i
    return checked


def scenarios_of(rows: tuple[Row, ...]) -> list[str]:
    """Scenario names in order of first appearance."""
    return list(dict.fromkeys(r.scenario for r in rows))
