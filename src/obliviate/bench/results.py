"""The results document (``obliviate.results/1``): tidy rows of (scenario, method, seed, metric, value).

Other tools read ``results.json``; its shape is stable:

    {"schema": "obliviate.results/1", "suite": "digits", "created": "ISO-8601",
     "versions": {"obliviate": "...", "torch": "..."}, "config": {...},
     "rows": [{"scenario": "random-10pct", "method": "scrub", "seed": 0,
               "metric": "forget_accuracy", "value": 0.91}]}

Per-seed metrics carry the seed; metrics over all seeds (the NeurIPS 2023 scores) carry
``"seed": null``. A value that is not a finite number (a metric that does not apply) is
``null``. ``results.csv`` holds the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from obliviate.errors import InvalidInputError
from obliviate.storage import atomic_write_bytes

__all__ = ["SCHEMA", "ORACLE", "ORIGINAL", "new_results", "add_row", "write_results", "read_results"]

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
    """Load a results.json and check it row by row (:func:`obliviate.report.check_results`)."""
    from obliviate.report.results import check_results

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
