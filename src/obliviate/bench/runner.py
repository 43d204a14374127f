"""Run a suite: for each scenario and seed, train the original, retrain the oracle, apply every
method, evaluate against the oracle, and score the NeurIPS 2023 metric over the seeds.

Seed s trains the original with ``recipe.with_seed(s)``, retrains the oracle with the same
recipe, and runs each method with ``seed=s``: N seeds give the N unlearned and N retrained
models the challenge's empirical epsilon compares (Triantafillou et al. 2024, Sec. 3). The
forget set is fixed per scenario, so every model is scored on the same examples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console

from obliviate.bench.results import ORACLE, ORIGINAL, add_row, new_results
from obliviate.bench.suites import Suite
from obliviate.errors import InvalidInputError, ObliviateError
from obliviate.evaluation import (
    evaluate,
    logit_scaled_confidence,
    nips_final_score,
    nips_forget_score,
    predict_logits,
)
from obliviate.progress import new_progress
from obliviate.request import ForgetRequest
from obliviate.training.trainer import train as train_model
from obliviate.unlearning import Cost, make_method, unlearn

__all__ = ["run_suite"]


def run_suite(
    suite: Suite,
    *,
    methods: Sequence[str] | None = None,
    seeds: int | None = None,
    scenarios: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    relearn: bool = True,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Benchmark ``methods`` on ``suite``; returns the results document (see ``bench.results``)."""
    console = console or Console(stderr=True)
    methods = list(methods or suite.methods)
    n_seeds = int(suite.seeds if seeds is None else seeds)
    if n_seeds < 2:
        raise InvalidInputError(f"seeds must be >= 2 (the NeurIPS score compares distributions over seeds), got {n_seeds}.")
    chosen = [s for s in suite.scenarios if scenarios is None or s.name in scenarios]
    if scenarios is not None:
        unknown = set(scenarios) - {s.name for s in suite.scenarios}
        if unknown:
            raise InvalidInputError(
                f"unknown scenario(s) {sorted(unknown)}; suite {suite.name!r} has {[s.name for s in suite.scenarios]}."
            )
    reserved = {ORACLE, ORIGINAL} & set(methods)
    if reserved:
        raise InvalidInputError(
            f"{sorted(reserved)} are always in the results as the references; list only the methods to compare."
        )
    if len(set(methods)) != len(methods):
        raise InvalidInputError(f"a method is listed twice in {methods}; list each once.")
    settings = dict(settings or {})
    named = {part for m in methods for part in m.split("+")}
    stray = sorted({k.partition(".")[0] for k in settings} - named)
    if stray:
        raise InvalidInputError(f"settings name method(s) {stray} that are not in this run ({', '.join(methods)}).")
    unlearners = {m: make_method(m, _settings_for(m, settings)) for m in methods}  # validates names and keys first
    train, test = suite.load()
    results = new_results(
        suite.name,
        {
            "description": suite.description,
            "recipe": suite.recipe.to_dict(),
            "seeds": n_seeds,
            "scenarios": {s.name: s.description for s in chosen},
            "methods": {m: u.settings() for m, u in unlearners.items()},
            "train_size": len(train),
            "test_size": len(test),
            "failures": [],
        },
    )
    total = len(chosen) * n_seeds * (len(methods) + 2)
    with new_progress(console=console) if show_progress else _NullProgress() as progress:
        bar = progress.add_task(f"bench {suite.name}", total=total)
        for scenario in chosen:
            _run_scenario(suite, scenario, train, test, unlearners, n_seeds, relearn, results, progress, bar)
    return results


def _settings_for(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``method.key`` settings that concern ``method`` (a composite takes its parts')."""
    parts = set(method.split("+"))
    return {k: v for k, v in settings.items() if k.partition(".")[0] in parts}


def _run_scenario(suite, scenario, train, test, unlearners, n_seeds, relearn, results, progress, bar) -> None:
    forget_ids = scenario.select(train)
    request = ForgetRequest(ids=forget_ids, note=f"{suite.name}/{scenario.name}")
    forget, _ = request.split(train)
    conf: dict[str, list[np.ndarray]] = defaultdict(list)
    retain_acc: dict[str, list[float]] = defaultdict(list)
    test_acc: dict[str, list[float]] = defaultdict(list)

    def record(method: str, seed: int, model, cost: Cost | None, oracle, original, oracle_seconds: float) -> None:
        metrics = evaluate(
            model,
            request,
            train,
            test,
            oracle=oracle,
            original=original,
            cost=cost,
            oracle_seconds=oracle_seconds,
            relearn=relearn,
            seed=seed,
        )
        for name, value in metrics.items():
            add_row(results, scenario.name, method, seed, name, value)
        conf[method].append(logit_scaled_confidence(predict_logits(model, forget), forget.y))
        retain_acc[method].append(metrics["retain_accuracy"])
        test_acc[method].append(metrics["test_accuracy"])

    for seed in range(n_seeds):
        recipe = suite.recipe.with_seed(seed)
        progress.update(bar, description=f"{scenario.name} seed {seed}: original")
        original = train_model(recipe, train)
        oracle_run = unlearn(original, request, train, method=ORACLE, recipe=recipe, seed=seed)
        oracle, oracle_seconds = oracle_run.model, oracle_run.cost.seconds
        record(ORIGINAL, seed, original, Cost(), oracle, original, oracle_seconds)
        record(ORACLE, seed, oracle, oracle_run.cost, oracle, original, oracle_seconds)
        progress.advance(bar, 2)
        for name, unlearner in unlearners.items():
            progress.update(bar, description=f"{scenario.name} seed {seed}: {name}")
            try:
                run = unlearn(original, request, train, method=unlearner, seed=seed, recipe=recipe)
            except ObliviateError as exc:
                results["config"]["failures"].append(
                    {"scenario": scenario.name, "method": name, "seed": seed, "error": str(exc)}
                )
                progress.console.print(f"[yellow]{scenario.name} seed {seed}: {name} failed: {exc}")
            else:
                record(name, seed, run.model, run.cost, oracle, original, oracle_seconds)
            progress.advance(bar)

    _score_nips(results, scenario.name, conf, retain_acc, test_acc)


def _score_nips(results, scenario: str, conf, retain_acc, test_acc) -> None:
    """The challenge's forget score F and final score per method, against the N retrained models.

    The oracle's own row splits its N retrained models into two halves scored against each
    other: the reference a perfect method would reach with N/2 models.
    """
    retrained = np.stack(conf[ORACLE])
    ra_r, ta_r = np.asarray(retain_acc[ORACLE]), np.asarray(test_acc[ORACLE])
    for method, samples in conf.items():
        if len(samples) != len(retrained):
            continue  # a method that failed on some seed has no comparable distribution
        unlearned = np.stack(samples)
        ra_u, ta_u = np.asarray(retain_acc[method]), np.asarray(test_acc[method])
        if method == ORACLE:
            half = len(retrained) // 2
            if half < 3:
                continue  # with two models a side, ceil(ln(N - 1)) = 0 leaves no bucket to score
            unlearned, reference = retrained[:half], retrained[half : 2 * half]
            ra_u, ra_ref, ta_u, ta_ref = ra_r[:half], ra_r[half : 2 * half], ta_r[:half], ta_r[half : 2 * half]
        else:
            reference, ra_ref, ta_ref = retrained, ra_r, ta_r
        forget_score = nips_forget_score(unlearned, reference)
        add_row(results, scenario, method, None, "nips_forget_score", forget_score)
        add_row(results, scenario, method, None, "nips_score", nips_final_score(forget_score, ra_u, ra_ref, ta_u, ta_ref))


class _NullProgress:
    """Progress stand-in when bars are off."""

    console = Console(stderr=True, quiet=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass


