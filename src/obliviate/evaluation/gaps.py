"""Comparisons with the retrained oracle: SalUn's Avg. Gap and the speed-up over retraining."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from obliviate.errors import InvalidInputError

__all__ = ["avg_gap", "efficiency", "GAP_METRICS"]

#: The four metrics of Avg. Gap, as :func:`~obliviate.evaluation.evaluate` names them (fractions).
GAP_METRICS = ("forget_accuracy", "mia_efficacy", "retain_accuracy", "test_accuracy")


def _fraction(values: Mapping[str, Any], key: str, which: str) -> float:
    if key not in values:
        raise InvalidInputError(
            f"{which} lacks {key!r}; avg_gap needs {', '.join(GAP_METRICS)} (fractions in [0, 1], "
            "as evaluate() returns them)."
        )
    value = float(values[key])
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"{which}[{key!r}] = {value} is not a fraction in [0, 1]; pass fractions, not percentages."
        )
    return value


def avg_gap(method: Mapping[str, Any], oracle: Mapping[str, Any]) -> float:
    """Mean of ``|method - oracle|`` over UA, MIA-Efficacy, RA and TA, in percentage points.

    Fan et al. ICLR 2024 (SalUn), Table 2, "Avg. Gap": the average of the absolute differences
    between a method's and Retrain's unlearning accuracy ``UA = 100 - forget accuracy``,
    MIA-Efficacy, retain accuracy and test accuracy, all in percent. (REFERENCES.md marks the
    exact definition unverified; this is the one the table's numbers follow.) ``method`` and
    ``oracle`` are mappings with :data:`GAP_METRICS` as fractions in ``[0, 1]``, e.g. two
    :func:`~obliviate.evaluation.evaluate` results; since ``|UA_m - UA_o| = |FA_m - FA_o|``,
    the result is ``100 / 4 * sum |m - o|``. 0 means indistinguishable from retraining on
    these four numbers.
    """
    for which, values in (("method", method), ("oracle", oracle)):
        if not isinstance(values, Mapping):
            raise InvalidInputError(f"{which} must be a mapping of metric name to value, got {type(values).__name__}.")
    gaps = [abs(_fraction(method, k, "method") - _fraction(oracle, k, "oracle")) for k in GAP_METRICS]
    return 100.0 * sum(gaps) / len(gaps)


def efficiency(retrain_seconds: float, method_seconds: float) -> float:
    """Speed-up over retraining: ``retrain_seconds / method_seconds`` (> 1: faster than retraining).

    The efficiency axis of unlearning evaluation (Bourtoule et al. S&P 2021, SISA, report
    unlearning as its speed-up over retraining from scratch; Triantafillou et al. 2024, Sec. 3,
    bound a challenge run at about 20% of retraining time, i.e. a speed-up >= 5).
    """
    r, m = float(retrain_seconds), float(method_seconds)
    if not (math.isfinite(r) and r > 0.0):
        raise InvalidInputError(f"retrain_seconds must be a finite time > 0, got {retrain_seconds}.")
    if not (math.isfinite(m) and m > 0.0):
        raise InvalidInputError(
            f"method_seconds must be a finite time > 0, got {method_seconds}; a method that did no work "
            "has no speed-up to report."
        )
    return r / m
