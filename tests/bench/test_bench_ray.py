"""--backend ray: seeds spread over a local Ray give the same rows as the local backend."""

from __future__ import annotations

from dataclasses import replace

import pytest

from obliviate.bench import get_suite, run_suite

TIMED = {"seconds", "efficiency"}  # wall-clock, different on every run


def _untimed(results):
    return [r for r in results["rows"] if r["metric"] not in TIMED]


def test_ray_backend_gives_the_local_numbers():
    ray = pytest.importorskip("ray")
    suite = get_suite("digits")
    suite = replace(suite, recipe=replace(suite.recipe, epochs=2, model_options={"hidden": (16,)}), scenarios=suite.scenarios[1:])
    options = {"methods": ["gradient_ascent"], "seeds": 4, "relearn": False, "show_progress": False}
    local = run_suite(suite, **options)
    try:
        remote = run_suite(suite, backend="ray", **options)
    finally:
        ray.shutdown()
    assert remote["config"]["backend"] == "ray"
    assert _untimed(remote) == _untimed(local)
    assert remote["per_example"] == local["per_example"]
