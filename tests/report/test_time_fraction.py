"""Time as a share of retraining is the median of per-seed ratios: one slow run does not skew it."""

from __future__ import annotations

import pytest

from obliviate.report import leaderboard


def test_one_slow_retrain_does_not_skew_the_time_fraction():
    rows = []
    for seed, (oracle_s, method_s) in enumerate([(1.0, 0.1), (1.0, 0.1), (10.0, 0.1)]):
        for method, secs in (("retrain", oracle_s), ("scrub", method_s)):
            rows.append({"scenario": "s", "method": method, "seed": seed, "metric": "seconds", "value": secs})
            rows.append({"scenario": "s", "method": method, "seed": seed, "metric": "forget_accuracy", "value": 0.5})
    doc = {"schema": "obliviate.results/1", "suite": "t", "created": "2026-01-01T00:00:00+00:00",
           "versions": {}, "config": {}, "rows": rows}
    board = {row["method"]: row for row in leaderboard(doc, "s")}
    assert board["scrub"]["time_fraction"] == pytest.approx(0.1)  # ratio of means would say 0.025
    assert board["retrain"]["time_fraction"] == pytest.approx(1.0)
