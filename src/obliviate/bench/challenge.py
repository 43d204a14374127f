"""The challenge-scale evaluation: hundreds of seeds per scenario through stacks of models.

The NeurIPS 2023 challenge scored each method by an empirical epsilon per forget example over
512 unlearned and 512 retrained models (Triantafillou et al. 2024, Sec. 3). Trained one by one
that is out of reach for most; here a task trains a chunk of seeds' retrained models with
:func:`~obliviate.training.train_many` (one vmapped program), unlearns a stack of originals
with :func:`~obliviate.unlearning.unlearn_many`, and evaluates every model from stacked logits.
Under the challenge protocol (the default; :mod:`obliviate.bench.runner`) the stack of originals
is the scenario's ONE original repeated, each copy unlearned with its own seed, as the
challenge's ``main.py`` runs the unlearning N times from one checkpoint; under ``per-seed`` it is
one original per seed, trained with ``train_many``. Tasks run locally or as Ray tasks
(:func:`obliviate.parallel.run_tasks`).

Per-seed metrics at this scale:

- every seed: retain, test and forget accuracy, LOSS-attack AUC, seconds and speed-up (a
  stack's wall time divided by its number of models), and the forget-set confidences the
  NeurIPS score and U-LiRA are computed from;
- the first ``full_seeds`` seeds only (10 by default): MIA-Efficacy (an SVC fit per model),
  relearn time (:func:`~obliviate.evaluation.relearn.relearn_epochs`, a fine-tuning run per model)
  and Avg. Gap (it needs MIA-Efficacy). The results'
  config records ``full_metric_seeds`` and the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console

from obliviate.bench.results import ORACLE, ORIGINAL
from obliviate.bench.runner import (
    ChunkResult,
    SeedJob,
    _job_fields,
    check_protocol,
    check_run,
    protocol_config,
    run_scenarios,
    scenario_original,
)
from obliviate.bench.suites import Suite
from obliviate.errors import InvalidInputError, ObliviateError
from obliviate.evaluation import (
    accuracy_of_logits,
    avg_gap,
    efficiency,
    logit_scaled_confidence,
    loss_attack_auc,
    mia_efficacy,
    per_example_loss,
    true_class_probability,
)
from obliviate.evaluation.relearn import LOSS_MARGIN, relearn_epochs

__all__ = ["run_challenge", "run_stack_chunk", "FULL_SEEDS", "SEEDS_PER_TASK"]

FULL_SEEDS = 10  # seeds that get the expensive per-model metrics (MIA-Efficacy, relearn time, Avg. Gap)
SEEDS_PER_TASK = 64  # a task's stack; the same chunks on either backend, so the same numbers


def run_challenge(
    suite: Suite,
    *,
    methods: Sequence[str] | None = None,
    seeds: int = 512,
    scenarios: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    relearn: bool = True,
    full_seeds: int = FULL_SEEDS,
    seeds_per_task: int = SEEDS_PER_TASK,
    show_progress: bool = True,
    console: Console | None = None,
    backend: str = "local",
    address: str | None = None,
    protocol: str = "challenge",
) -> dict[str, Any]:
    """Benchmark ``methods`` on ``suite`` over ``seeds`` seeds with stacked models; the results document.

    ``protocol``: ``"challenge"`` (default: one original per scenario, unlearned with each seed)
    or ``"per-seed"`` (one original per seed); the results' config records which.

    Same rows as :func:`~obliviate.bench.run_suite` (the expensive per-seed metrics on the
    first ``full_seeds`` seeds only). ``methods`` default to the suite's methods that run
    vectorised (:func:`~obliviate.unlearning.vectorised_methods`); others are accepted and run
    through ``unlearn_many``'s loop fallback.
    """
    if methods is None:
        from obliviate.unlearning import vectorised_methods

        methods = [m for m in suite.methods if m in vectorised_methods()]
    for name, value in (("full_seeds", full_seeds), ("seeds_per_task", seeds_per_task)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "full_seeds" else 1):
            raise InvalidInputError(f"{name} must be a {'non-negative' if name == 'full_seeds' else 'positive'} integer, got {value!r}.")
    check_protocol(protocol)
    methods, n_seeds, chosen, unlearners = check_run(suite, methods, seeds, scenarios, settings, backend, address)
    settings = dict(settings or {})
    full = frozenset(range(min(full_seeds, n_seeds)))

    def jobs(scenario, train, test, forget_ids) -> list[SeedJob]:
        common = _job_fields(suite, scenario, train, test, forget_ids, methods, settings, relearn)
        original = scenario_original(suite.recipe, train, protocol)
        return [
            SeedJob(
                **common,
                seeds=tuple(range(start, min(start + seeds_per_task, n_seeds))),
                full_seeds=full,
                original=original,
            )
            for start in range(0, n_seeds, seeds_per_task)
        ]

    config = {
        **protocol_config(protocol),
        "engine": "stack",
        "backend": backend,
        "seeds_per_task": seeds_per_task,
        "full_metric_seeds": len(full),
        "per_seed_note": (
            f"MIA-Efficacy, relearn time and Avg. Gap are computed on the first {len(full)} seeds only; "
            "seconds are each stack's wall time divided by its number of models"
        ),
    }
    return run_scenarios(
        suite, chosen, unlearners, n_seeds, jobs, run_stack_chunk, config,
        backend=backend, address=address, show_progress=show_progress, console=console,
    )


def _logits(stack, data) -> np.ndarray:
    return stack.logits(data.tensors[0]).numpy()


def _cheap_metrics(logits: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], i: int) -> dict[str, float]:
    """Accuracies and the LOSS-attack AUC of model ``i`` from the stack's logits."""
    return {
        "retain_accuracy": accuracy_of_logits(logits["retain"][i], labels["retain"]),
        "test_accuracy": accuracy_of_logits(logits["test"][i], labels["test"]),
        "forget_accuracy": accuracy_of_logits(logits["forget"][i], labels["forget"]),
        "loss_auc": loss_attack_auc(
            per_example_loss(logits["forget"][i], labels["forget"]), per_example_loss(logits["test"][i], labels["test"])
        ),
    }


def _mia(logits: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], i: int) -> float:
    conf = {k: true_class_probability(logits[k][i], labels[k]) for k in ("retain", "test", "forget")}
    return mia_efficacy(conf["retain"], conf["test"], conf["forget"])


def run_stack_chunk(job: SeedJob) -> ChunkResult:
    """The stacked engine's task: ``job.seeds`` trained, retrained and unlearned as stacks, then evaluated."""
    from obliviate.training import ModelStack, train_many
    from obliviate.unlearning import unlearn_many

    request = job.request
    forget, retain = request.split(job.train)
    sets = {"forget": forget, "retain": retain, "test": job.test}
    labels = {k: d.y for k, d in sets.items()}
    m = len(job.seeds)

    if job.original is None:  # per-seed protocol: seed s's own original
        originals = train_many(job.recipe, job.train, job.seeds)
    else:  # challenge protocol: the one original, a copy per unlearning seed
        originals = ModelStack.from_models([job.original] * m, seeds=job.seeds, recipe=job.recipe.with_seed(0))
    start = time.perf_counter()
    retrained = train_many(job.recipe, retain, job.seeds)
    oracle_seconds = (time.perf_counter() - start) / m
    stacks: dict[str, tuple[Any, float]] = {ORIGINAL: (originals, 0.0), ORACLE: (retrained, oracle_seconds)}
    out = ChunkResult()
    for name, settings in job.methods:
        try:
            res = unlearn_many(originals, request, job.train, method=name, settings=settings)
        except ObliviateError as exc:  # a method that fails (bad input, a diverging loss) fails on each of its seeds
            out.failures.extend({"scenario": job.scenario, "method": name, "seed": s, "error": str(exc)} for s in job.seeds)
            continue
        stacks[name] = (res.stack, float(res.cost.seconds) / m)

    logits = {name: {k: _logits(stack, d) for k, d in sets.items()} for name, (stack, _) in stacks.items()}
    full = [i for i, s in enumerate(job.seeds) if s in job.full_seeds]
    oracle_full = {i: {**_cheap_metrics(logits[ORACLE], labels, i), "mia_efficacy": _mia(logits[ORACLE], labels, i)}
                   for i in full}
    # relearn target: the original's forget loss + 1e-5 (SCRUB's readout; obliviate.evaluation.relearn)
    target_loss = [
        float(per_example_loss(logits[ORIGINAL]["forget"][i], labels["forget"]).mean()) + LOSS_MARGIN for i in range(m)
    ]
    for name, (stack, seconds) in stacks.items():
        for i, seed in enumerate(job.seeds):
            metrics = dict(oracle_full[i]) if name == ORACLE and i in oracle_full else _cheap_metrics(logits[name], labels, i)
            if i in oracle_full:
                if name != ORACLE:
                    metrics = {**metrics, "mia_efficacy": _mia(logits[name], labels, i)}
                if job.relearn:
                    metrics["relearn_epochs"] = float(
                        relearn_epochs(stack.model(i), forget, job.train, target_loss=target_loss[i], seed=seed)
                    )
                metrics["avg_gap"] = avg_gap(metrics, oracle_full[i])
            metrics = {**metrics, "seconds": seconds}
            if seconds > 0.0:
                metrics["efficiency"] = efficiency(oracle_seconds, seconds)
            out.record(name, seed, metrics, logit_scaled_confidence(logits[name]["forget"][i], labels["forget"]))
    return out

