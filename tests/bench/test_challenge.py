"""The stacked (challenge-scale) bench engine: the rows it writes, which seeds get the expensive
metrics, and agreement with the seed-by-seed loop engine on the same small suite."""

from __future__ import annotations

from dataclasses import replace

import pytest

from obliviate.bench import get_suite, run_suite
from obliviate.bench.challenge import run_challenge
from obliviate.errors import InvalidInputError

SEEDS = 8


@pytest.fixture(scope="module")
def tiny_suite():
    suite = get_suite("digits")
    recipe = replace(suite.recipe, epochs=3, model_options={"hidden": (32,)})
    return replace(suite, recipe=recipe, scenarios=suite.scenarios[:1])


@pytest.fixture(scope="module")
def challenge(tiny_suite):
    return run_challenge(
        tiny_suite, methods=["finetune"], seeds=SEEDS, full_seeds=2, seeds_per_task=4, relearn=False, show_progress=False
    )


def _rows(results, **where):
    return [r for r in results["rows"] if all(r[k] == v for k, v in where.items())]


def test_expensive_metrics_only_on_the_first_seeds(challenge):
    assert challenge["config"]["engine"] == "stack" and challenge["config"]["full_metric_seeds"] == 2
    for method in ("original", "retrain", "finetune"):
        for seed in range(SEEDS):
            got = {r["metric"] for r in _rows(challenge, method=method, seed=seed)}
            assert {"retain_accuracy", "test_accuracy", "forget_accuracy", "loss_auc", "seconds"} <= got
            assert ("mia_efficacy" in got) == (seed < 2) and ("avg_gap" in got) == (seed < 2)
    for seed in range(2):
        (gap,) = _rows(challenge, method="retrain", seed=seed, metric="avg_gap")
        assert gap["value"] == 0.0


def test_over_seed_scores_and_per_example_view(challenge):
    overall = {(r["method"], r["metric"]) for r in challenge["rows"] if r["seed"] is None}
    for method in ("original", "retrain", "finetune"):  # 8 seeds: the oracle's U-LiRA uses quarters of 2
        assert {(method, m) for m in ("nips_score", "nips_forget_score", "ulira_accuracy", "ulira_auc")} <= overall
    view = challenge["per_example"]["random-10pct"]
    n_forget = len(view["forget_ids"])
    finetune = view["methods"]["finetune"]
    assert len(finetune["epsilons"]) == n_forget and finetune["num_models"] == SEEDS
    assert view["methods"]["retrain"]["num_models"] == SEEDS // 2
    worst = finetune["worst"]
    assert [w["epsilon"] for w in worst] == sorted((w["epsilon"] for w in worst), reverse=True)
    assert worst[0]["epsilon"] == max(finetune["epsilons"])
    assert finetune["example"]["id"] == worst[0]["id"] and len(finetune["example"]["unlearned"]) == SEEDS


def test_stacked_models_agree_with_the_loop_engine(tiny_suite, challenge):
    loop = run_suite(tiny_suite, methods=["finetune"], seeds=2, relearn=False, show_progress=False)
    for method in ("original", "retrain", "finetune"):
        for seed in range(2):
            for metric in ("retain_accuracy", "test_accuracy", "forget_accuracy", "mia_efficacy"):
                (a,) = _rows(loop, method=method, seed=seed, metric=metric)
                (b,) = _rows(challenge, method=method, seed=seed, metric=metric)
                assert b["value"] == pytest.approx(a["value"], abs=0.01), (method, seed, metric)


def test_bad_options(tiny_suite):
    with pytest.raises(InvalidInputError, match="seeds_per_task"):
        run_challenge(tiny_suite, methods=["finetune"], seeds=4, seeds_per_task=0, show_progress=False)
    with pytest.raises(InvalidInputError, match="backend"):
        run_challenge(tiny_suite, methods=["finetune"], seeds=4, backend="spark", show_progress=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "turbo"], "unknown --engine"),
        (["--backend", "spark"], "unknown backend"),
        (["--address", "ray://head:10001"], "--address is for the ray backend"),
    ],
)
def test_bench_cli_rejects_bad_engine_and_backend(monkeypatch, capsys, tmp_path, args, message):
    import sys

    from obliviate.cli import main

    monkeypatch.setattr(sys, "argv", ["obliviate", "bench", "--out", str(tmp_path), *args])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_auto_engine_stacks_only_many_seeds_of_trainable_recipes(tiny_suite):
    from obliviate.cli.core import _stacked

    assert _stacked("auto", tiny_suite, 512) and not _stacked("auto", tiny_suite, 10)
    assert not _stacked("auto", get_suite("certified"), 512)  # solver models train one at a time
    assert _stacked("stack", tiny_suite, 4) and not _stacked("loop", tiny_suite, 512)


def test_challenge_protocol_unlearns_one_original_with_every_seed(challenge):
    """The challenge's main.py: one original, N unlearning runs, N retrained models. The untouched original
    is then the same model for every seed: no spread, so the metric's range rule gives it nothing."""
    assert challenge["config"]["protocol"] == "challenge" and challenge["config"]["original_seed"] >= SEEDS
    original = {r["value"] for r in _rows(challenge, method="original", metric="forget_accuracy")}
    assert len(original) == 1
    (score,) = _rows(challenge, method="original", metric="nips_forget_score", seed=None)
    assert score["value"] == 0.0
    finetuned = {r["value"] for r in _rows(challenge, method="finetune", metric="retain_accuracy")}
    assert len(finetuned) > 1  # the unlearning seeds differ: batch orders of one original


def test_per_seed_protocol_trains_an_original_per_seed(tiny_suite):
    results = run_challenge(
        tiny_suite, methods=["finetune"], seeds=4, full_seeds=0, relearn=False, show_progress=False, protocol="per-seed"
    )
    assert results["config"]["protocol"] == "per-seed" and "original_seed" not in results["config"]
    assert len({r["value"] for r in _rows(results, method="original", metric="retain_accuracy")}) > 1
    with pytest.raises(InvalidInputError, match="protocol"):
        run_challenge(tiny_suite, methods=["finetune"], seeds=4, show_progress=False, protocol="per-model")
    with pytest.raises(InvalidInputError, match="protocol"):
        run_suite(tiny_suite, methods=["finetune"], seeds=2, show_progress=False, protocol="nope")


def test_a_diverging_method_is_recorded_as_failed_and_the_run_goes_on(tiny_suite):
    """A stacked method whose loss diverges fails on each of its seeds (as the loop engine records it); the other
    methods and the references are still scored (it stopped the whole run)."""
    results = run_challenge(
        tiny_suite,
        methods=["gradient_ascent", "finetune"],
        seeds=2,
        full_seeds=0,
        settings={"gradient_ascent.lr": 1e12, "gradient_ascent.epochs": 3},
        relearn=False,
        show_progress=False,
    )
    failed = results["config"]["failures"]
    assert {f["method"] for f in failed} == {"gradient_ascent"} and len(failed) == 2
    assert "diverge" in failed[0]["error"].lower() or "finite" in failed[0]["error"].lower()
    assert _rows(results, method="finetune", metric="retain_accuracy")
