"""Run a suite: for each scenario and seed, retrain the oracle, apply every method to the
original, evaluate against the oracle, and score the NeurIPS 2023 metric and U-LiRA over the seeds.

Two protocols give the N unlearned and N retrained models the challenge's empirical epsilon
compares (Triantafillou et al. 2024, Sec. 3; google-deepmind/unlearning_evaluation ``main.py``):

- ``"challenge"`` (the default, as the challenge ran it): ONE original per scenario, trained
  with ``recipe.with_seed(ORIGINAL_SEED)``; seed s runs each method on that original with
  ``seed=s`` (the unlearning's own randomness) and retrains the oracle with
  ``recipe.with_seed(s)``. A deterministic method (the untouched original, SSD) then has no
  spread on the unlearned side, and the metric's range rule caps its examples' epsilon.
- ``"per-seed"``: seed s trains its own original with ``recipe.with_seed(s)`` and unlearns it
  with ``seed=s``, so the unlearned side also carries the training seed's variance (obliviate's
  earlier bench; kept for comparison).

The results' config records ``protocol`` (and ``original_seed`` under the challenge protocol).
The forget set is fixed per scenario, so every model is scored on the same examples.

Seeds are independent, so they run as tasks through :func:`obliviate.parallel.run_tasks`: one
seed per task here (the loop engine), a chunk of seeds per task in the stacked engine
(:mod:`obliviate.bench.challenge`); ``backend="ray"`` spreads the tasks over Ray workers and
gives the same numbers as the local backend (each task is a pure function of its job).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from obliviate.bench.results import ORACLE, ORIGINAL, add_row, new_results
from obliviate.bench.scoring import score_scenario
from obliviate.bench.suites import Suite
from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError, ObliviateError
from obliviate.evaluation import evaluate, logit_scaled_confidence, predict_logits
from obliviate.parallel import check_backend, run_tasks
from obliviate.progress import new_progress
from obliviate.request import ForgetRequest
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train as train_model
from obliviate.unlearning import Cost, make_method, unlearn

__all__ = [
    "run_suite",
    "SeedJob",
    "ChunkResult",
    "run_seed_chunk",
    "check_run",
    "run_scenarios",
    "PROTOCOLS",
    "ORIGINAL_SEED",
    "check_protocol",
]

#: The bench's protocols for the NeurIPS score (see the module docstring); the first is the default.
PROTOCOLS: tuple[str, ...] = ("challenge", "per-seed")
#: The training seed of the one original per scenario under the challenge protocol: outside the
#: seeds 0..N-1 that retrain the oracles, so the original shares neither init nor order with any.
ORIGINAL_SEED = 1_000_000


@dataclass(frozen=True)
class SeedJob:
    """Everything one task needs to evaluate some seeds of one scenario (picklable, for Ray)."""

    scenario: str
    note: str
    recipe: Recipe
    train: Dataset
    test: Dataset
    forget_ids: np.ndarray
    methods: tuple[tuple[str, dict[str, Any]], ...]  # (name, its settings)
    seeds: tuple[int, ...]
    relearn: bool = True
    full_seeds: frozenset[int] = frozenset()  # stacked engine: the seeds that get the expensive metrics
    original: nn.Module | None = None  # challenge protocol: the scenario's one original; None: per seed

    @property
    def request(self) -> ForgetRequest:
        return ForgetRequest(ids=self.forget_ids, note=self.note)

    def original_for(self, seed: int) -> nn.Module:
        """The model seed ``seed`` unlearns: the scenario's one original, or (per-seed) its own."""
        return self.original if self.original is not None else train_model(self.recipe.with_seed(seed), self.train)


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`; an error naming the choices otherwise."""
    if protocol not in PROTOCOLS:
        raise InvalidInputError(
            f"unknown protocol {protocol!r}: use 'challenge' (one original per scenario, N unlearning seeds, as the "
            "NeurIPS 2023 challenge ran it) or 'per-seed' (one original per seed)."
        )
    return protocol


def scenario_original(recipe: Recipe, train: Dataset, protocol: str) -> nn.Module | None:
    """The challenge protocol's one original of a scenario (``recipe`` at :data:`ORIGINAL_SEED`); None per seed."""
    return train_model(recipe.with_seed(ORIGINAL_SEED), train) if protocol == "challenge" else None


def protocol_config(protocol: str) -> dict[str, Any]:
    """What the results' config records about the protocol (the report names it beside the NeurIPS score)."""
    if protocol == "challenge":
        return {
            "protocol": protocol,
            "original_seed": ORIGINAL_SEED,
            "protocol_note": "one original per scenario; N unlearning runs with seeds 0..N-1; N retrained models",
        }
    return {"protocol": protocol, "protocol_note": "one original per seed; seed s unlearns its own original"}


@dataclass
class ChunkResult:
    """What a task returns: per-seed rows, and per method and seed the inputs of the over-seeds scores."""

    rows: list[tuple[str, int, str, float]] = field(default_factory=list)  # (method, seed, metric, value)
    conf: dict[str, dict[int, np.ndarray]] = field(default_factory=lambda: defaultdict(dict))
    retain_acc: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    test_acc: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    failures: list[dict[str, Any]] = field(default_factory=list)

    def record(self, method: str, seed: int, metrics: Mapping[str, float], conf: np.ndarray) -> None:
        self.rows.extend((method, seed, name, float(value)) for name, value in metrics.items())
        self.conf[method][seed] = conf
        self.retain_acc[method][seed] = float(metrics["retain_accuracy"])
        self.test_acc[method][seed] = float(metrics["test_accuracy"])

    def merge(self, other: ChunkResult) -> None:
        self.rows.extend(other.rows)
        self.failures.extend(other.failures)
        for mine, theirs in ((self.conf, other.conf), (self.retain_acc, other.retain_acc), (self.test_acc, other.test_acc)):
            for method, by_seed in theirs.items():
                mine[method].update(by_seed)


def run_seed_chunk(job: SeedJob) -> ChunkResult:
    """The loop engine's task: every seed of ``job`` trained, retrained, unlearned and evaluated one by one."""
    request = job.request
    forget, _ = request.split(job.train)
    unlearners = {name: make_method(name, settings) for name, settings in job.methods}
    out = ChunkResult()

    def record(method: str, seed: int, model, cost: Cost | None, oracle, original, oracle_seconds: float) -> None:
        metrics = evaluate(
            model,
            request,
            job.train,
            job.test,
            oracle=oracle,
            original=original,
            cost=cost,
            oracle_seconds=oracle_seconds,
            relearn=job.relearn,
            seed=seed,
        )
        out.record(method, seed, metrics, logit_scaled_confidence(predict_logits(model, forget), forget.y))

    for seed in job.seeds:
        recipe = job.recipe.with_seed(seed)
        original = job.original_for(seed)
        oracle_run = unlearn(original, request, job.train, method=ORACLE, recipe=recipe, seed=seed)
        oracle, oracle_seconds = oracle_run.model, oracle_run.cost.seconds
        record(ORIGINAL, seed, original, Cost(), oracle, original, oracle_seconds)
        record(ORACLE, seed, oracle, oracle_run.cost, oracle, original, oracle_seconds)
        for name, unlearner in unlearners.items():
            try:
                run = unlearn(original, request, job.train, method=unlearner, seed=seed, recipe=recipe)
            except ObliviateError as exc:
                out.failures.append({"scenario": job.scenario, "method": name, "seed": seed, "error": str(exc)})
            else:
                record(name, seed, run.model, run.cost, oracle, original, oracle_seconds)
    return out


def check_run(
    suite: Suite,
    methods: Sequence[str] | None,
    seeds: int | None,
    scenarios: Sequence[str] | None,
    settings: Mapping[str, Any] | None,
    backend: str,
    address: str | None,
) -> tuple[list[str], int, list, dict[str, Any]]:
    """Validate a run's options before anything is trained; returns (methods, seeds, scenarios, unlearners)."""
    check_backend(backend, address)
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
    return methods, n_seeds, chosen, unlearners


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
    backend: str = "local",
    address: str | None = None,
    protocol: str = "challenge",
) -> dict[str, Any]:
    """Benchmark ``methods`` on ``suite`` seed by seed; returns the results document (see ``bench.results``).

    ``protocol``: ``"challenge"`` (default; one original per scenario) or ``"per-seed"`` (one per
    seed), see the module docstring. ``backend="ray"`` runs each seed as a Ray task (a local Ray,
    or the cluster at ``address``).
    """
    check_protocol(protocol)
    methods, n_seeds, chosen, unlearners = check_run(suite, methods, seeds, scenarios, settings, backend, address)
    settings = dict(settings or {})

    def jobs(scenario, train, test, forget_ids) -> list[SeedJob]:
        common = _job_fields(suite, scenario, train, test, forget_ids, methods, settings, relearn)
        original = scenario_original(suite.recipe, train, protocol)
        return [SeedJob(**common, seeds=(seed,), original=original) for seed in range(n_seeds)]

    config = {"engine": "loop", "backend": backend, **protocol_config(protocol)}
    return run_scenarios(
        suite, chosen, unlearners, n_seeds, jobs, run_seed_chunk, config,
        backend=backend, address=address, show_progress=show_progress, console=console,
    )


def _job_fields(suite, scenario, train, test, forget_ids, methods, settings, relearn) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "note": f"{suite.name}/{scenario.name}",
        "recipe": suite.recipe,
        "train": train,
        "test": test,
        "forget_ids": np.asarray(forget_ids, dtype=np.int64),
        "methods": tuple((m, _settings_for(m, settings)) for m in methods),
        "relearn": relearn,
    }


def run_scenarios(
    suite: Suite,
    chosen: list,
    unlearners: Mapping[str, Any],
    n_seeds: int,
    make_jobs: Callable[..., list[SeedJob]],
    task: Callable[[SeedJob], ChunkResult],
    engine_config: Mapping[str, Any],
    *,
    backend: str,
    address: str | None,
    show_progress: bool,
    console: Console | None,
    threads: int = 1,
) -> dict[str, Any]:
    """The part both engines share: results document, tasks per scenario, over-seeds scores.

    Tasks run with ``threads`` torch threads on either backend (1 by default: the models are
    small, a shared machine's cores stall multi-threaded kernels, and equal thread counts give
    the local and Ray backends the same float reductions, hence the same numbers).
    """
    console = console or Console(stderr=True)
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
            **engine_config,
            "torch_threads": threads,
            "failures": [],
            "tasks": {},
        },
    )
    with new_progress(console=console) if show_progress else _NullProgress() as progress:
        with _torch_threads(threads):  # the one original too: the same numbers whatever the driver's core count
            per_scenario = [(s, make_jobs(s, train, test, s.select(train))) for s in chosen]
        bar = progress.add_task(f"bench {suite.name}", total=sum(len(j.seeds) for _, js in per_scenario for j in js))
        for scenario, jobs in per_scenario:
            progress.update(bar, description=f"{scenario.name}: {len(jobs)} task(s)")

            def done(_index: int, chunk: ChunkResult, jobs=jobs) -> None:
                progress.advance(bar, len(jobs[_index].seeds))
                for failure in chunk.failures:
                    progress.console.print(
                        f"[yellow]{failure['scenario']} seed {failure['seed']}: {failure['method']} failed: {failure['error']}"
                    )

            merged = ChunkResult()
            timings: list[dict[str, Any]] = []
            start = time.perf_counter()
            with _torch_threads(threads if backend == "local" else None):
                chunks = run_tasks(
                    task, jobs, backend=backend, address=address, threads=threads, on_done=done, timings=timings
                )
            results["config"]["tasks"][scenario.name] = _task_split(jobs, timings, time.perf_counter() - start)
            for chunk in chunks:
                merged.merge(chunk)
            _add_scenario(results, scenario.name, jobs[0].forget_ids, merged, n_seeds)
    return results


def _task_split(jobs: Sequence[SeedJob], timings: Sequence[Mapping[str, Any]], wall: float) -> dict[str, Any]:
    """How a scenario's seeds were split into tasks and where the time went (results config ``tasks``).

    ``task_seconds``: each task's run inside its worker; ``wall_seconds``: the whole ``run_tasks``
    call (with Ray: start-up or joining, shipping the jobs, scheduling, results back);
    ``workers``: distinct processes that ran tasks. Wall minus the busiest worker's sum is what
    the backend added on top of the compute.
    """
    per_worker: dict[int, float] = defaultdict(float)
    for t in timings:
        per_worker[int(t["worker"])] += float(t["seconds"])
    return {
        "count": len(jobs),
        "seeds_per_task": [len(j.seeds) for j in jobs],
        "task_seconds": [round(float(t["seconds"]), 4) for t in timings],
        "workers": len(per_worker),
        "busiest_worker_seconds": round(max(per_worker.values(), default=0.0), 4),
        "wall_seconds": round(wall, 4),
    }


def _add_scenario(results: dict[str, Any], scenario: str, forget_ids: np.ndarray, merged: ChunkResult, n_seeds: int) -> None:
    """Per-seed rows in seed order (methods in the order they ran), then the over-seeds scores."""
    order = {m: i for i, m in enumerate(dict.fromkeys(r[0] for r in merged.rows))}
    for method, seed, metric, value in sorted(merged.rows, key=lambda r: (r[1], order[r[0]])):
        add_row(results, scenario, method, seed, metric, value)
    results["config"]["failures"].extend(sorted(merged.failures, key=lambda f: (f["seed"], f["method"])))
    seeds = range(n_seeds)

    def over_seeds(table: Mapping[str, Mapping[int, Any]]) -> dict[str, list[Any]]:
        return {m: [by_seed.get(s) for s in seeds] for m, by_seed in table.items()}

    score_scenario(
        results, scenario, forget_ids, over_seeds(merged.conf), over_seeds(merged.retain_acc), over_seeds(merged.test_acc)
    )


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (unchanged for None), then restore the count."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _settings_for(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``method.key`` settings that concern ``method`` (a composite takes its parts')."""
    parts = set(method.split("+"))
    return {k: v for k, v in settings.items() if k.partition(".")[0] in parts}


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
