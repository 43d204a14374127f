"""The results document (``obliviate.results/1``): tidy rows of (scenario, method, seed, metric, value).

Other tools read ``results.json``; its shape is stable:

    {"schema": "obliviate.results/1", "suite": "digits", "created": "ISO-8601",
     "versions": {"obliviate": "...", "torch": "..."}, "config": {...},
     "rows": [{"scenario": "random-10pct", "method": "scrub", "seed": 0,
               "metric": "forget_accuracy", "value": 0.91}]}

Per-seed metrics carry the seed; metrics over all seeds (the NeurIPS 2023 scores) carry
``"seed": null``. A value that is not a finite number (a metric that does not apply) is
``null``. ``results.csv`` holds the same rows.

This module owns the schema: the benchmarks write documents with it and the report reads them with
it (:mod:`obliviate.bench` and :mod:`obliviate.report` both import it, never each other).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Real
from pathlib import Path
from typing import Any

from obliviate.errors import InvalidInputError
from obliviate.storage import atomic_write_bytes

__all__ = [
    "SCHEMA",
    "ORACLE",
    "ORIGINAL",
    "Row",
    "new_results",
    "add_row",
    "write_results",
    "read_results",
    "check_results",
    "scenarios_of",
]

SCHEMA = "obliviate.results/1"
ORACLE = "retrain"  # the model retrained without the forget set: every gap is measured against it
ORIGINAL = "original"  # the model before unlearning


def _versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch

    import obliviate

    return {
        "obliviate": obliviate.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def new_results(suite: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "suite": suite,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "config": config,
        "rows": [],
    }


def add_row(results: dict[str, Any], scenario: str, method: str, seed: int | None, metric: str, value: float) -> None:
    value = float(value)
    results["rows"].append(
        {
            "scenario": scenario,
            "method": method,
            "seed": None if seed is None else int(seed),
            "metric": metric,
            "value": value if math.isfinite(value) else None,
        }
    )


def write_results(results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write results.json and results.csv into ``out_dir`` atomically."""
    out = Path(out_dir)
    json_path, csv_path = out / "results.json", out / "results.csv"
    atomic_write_bytes(json_path, (_dumps(results) + "\n").encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["scenario", "method", "seed", "metric", "value"], lineterminator="\n")
    writer.writeheader()
    for row in results["rows"]:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in writer.fieldnames})
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    return json_path, csv_path


_ROWS, _PER_EXAMPLE = "__obliviate_rows__", "__obliviate_per_example__"


def _dumps(results: dict[str, Any]) -> str:
    """The document as indented JSON, with one compact line per row (a 512-seed run has ~10^5 rows)
    and the per-example view compact (lists of numbers would take a line per number)."""
    doc = {**results, "rows": _ROWS}
    if "per_example" in results:
        doc["per_example"] = _PER_EXAMPLE
    head = json.dumps(doc, indent=1)
    rows = ",\n  ".join(json.dumps(r, separators=(", ", ": ")) for r in results["rows"])
    head = head.replace(json.dumps(_ROWS), "[\n  " + rows + "\n ]" if rows else "[]", 1)
    if "per_example" in results:
        head = head.replace(json.dumps(_PER_EXAMPLE), json.dumps(results["per_example"], separators=(",", ":")), 1)
    return head


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a results.json and check it row by row (:func:`check_results`)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read results from {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise InvalidInputError(f"{path} has schema {got!r}, expected {SCHEMA!r}.")
    check_results(doc)
    return doc


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


def _check_row(i: int, row: Any, is_fraction: Callable[[str], bool]) -> Row:
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
    if value is not None and is_fraction(row["metric"]) and not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"{_where(i, row)}: value {value:g} is outside [0, 1]. {row['metric']} is stored as a fraction; "
            "divide percentages by 100."
        )
    return Row(row["scenario"], row["method"], seed, row["metric"], value)


def check_results(results: Any, *, is_fraction: Callable[[str], bool] = lambda metric: False) -> tuple[Row, ...]:
    """Validate a results document; return its rows. Raises InvalidInputError naming the problem.

    ``is_fraction(metric)`` says which metrics are stored as fractions in [0, 1] (their values are
    range-checked); the report passes its metric table (:func:`obliviate.report.check_results`).
    """
    if not isinstance(results, Mapping):
        raise InvalidInputError(
            f"results must be the results document (a dict parsed from results.json), got {type(results).__name__}."
        )
    schema = results.get("schema")
    if schema != SCHEMA:
        raise InvalidInputError(
            f"results schema is {schema!r}, expected {SCHEMA!r}. obliviate reads documents written by "
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
    checked = tuple(_check_row(i, row, is_fraction) for i, row in enumerate(rows))
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
