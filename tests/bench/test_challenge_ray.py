"""The stacked (challenge-protocol) engine on Ray: the same chunks of seeds give the local numbers bit for bit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from obliviate.bench import get_suite
from obliviate.bench.challenge import run_challenge

TIMED = {"seconds", "efficiency"}  # wall-clock, different on every run


def _untimed(results):
    return [r for r in results["rows"] if r["metric"] not in TIMED]


def test_stacked_engine_on_ray_gives_the_local_numbers_and_records_the_split():
    ray = pytest.importorskip("ray")
    suite = get_suite("digits")
    suite = replace(suite, recipe=replace(suite.recipe, epochs=2, model_options={"hidden": (16,)}), scenarios=suite.scenarios[:1])
    options = {"methods": ["gradient_ascent"], "seeds": 6, "seeds_per_task": 4, "full_seeds": 1, "relearn": True,
               "show_progress": False}
    local = run_challenge(suite, **options)
    try:
        remote = run_challenge(suite, backend="ray", **options)
    finally:
        ray.shutdown()
    assert _untimed(remote) == _untimed(local)
    assert remote["per_example"] == local["per_example"]
    scores = [r for r in remote["rows"] if r["metric"] == "nips_score"]
    assert {r["method"] for r in scores} == {"gradient_ascent", "original", "retrain"}
    split = remote["config"]["tasks"][suite.scenarios[0].name]
    assert split["count"] == 2 and split["seeds_per_task"] == [4, 2] and len(split["task_seconds"]) == 2
    assert local["config"]["tasks"][suite.scenarios[0].name]["workers"] == 1
