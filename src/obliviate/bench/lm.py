"""The ``authors`` suite: TOFU-style language-model unlearning on the fictitious-authors benchmark.

For each seed: fine-tune the base model on every trained author (the target, ``original``) and,
per forget split, on the retain authors only (the oracle, ``retrain``); run every LM method on
the target with the split's request (its authors); score every model with TOFU's metrics
(Maini et al. 2024) against the retain model, the membership attacks and MUSE's privleak (Shi
et al. 2024) against the holdout authors, fluency and relearning. Rows go into the
``obliviate.results/1`` document with scenario = the split.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from obliviate.bench.results import ORACLE, ORIGINAL, add_row, new_results
from obliviate.data.authors import AuthorsBenchmark, QADataset, fictitious_authors
from obliviate.errors import InvalidInputError, ObliviateError
from obliviate.evaluation import lm as metrics
from obliviate.lm.generate import free_answers
from obliviate.lm.training import FinetuneRecipe, base_model, recipe_for, retain_model, target_model
from obliviate.models.lm import LanguageModel, model_family
from obliviate.progress import new_progress

__all__ = ["LM_METHODS", "DEFAULT_SPLITS", "default_splits", "lm_methods", "tiny_benchmark", "score_model", "ModelScores", "run_authors"]

LM_METHODS = ("lm_grad_ascent", "grad_diff", "npo", "simnpo", "idk_dpo", "rmu", "task_vector", "whp", "undial")
DEFAULT_SPLITS = ("forget10", "forget01")
FALLBACK_SPLIT = "forget05"  # replaces forget01 when 1% of the benchmark's authors is no author
RETAIN_EVAL_ITEMS = 120  # TOFU evaluates utility on 400 retain items; a seeded sample of this many
RELEARN_FRACTION = 0.9  # relearning stops when forget Prob is back at 90% of the target's
RELEARN_MAX_STEPS = 20  # a method still short of it after this many steps gets RELEARN_MAX_STEPS + 1
ANSWER_TOKENS = 32  # greedy answers' length limit (the benchmark's answers are one short sentence)


def lm_methods(*, prompting: bool = True) -> list[str]:
    """The registered language-model methods: the weight methods (``obliviate.empirical.lm``) and the prompting
    methods (``obliviate.prompting``: the weights untouched, guarantee ``behavioural``)."""
    from obliviate.unlearning import available_methods

    families = ("obliviate.empirical.lm", "obliviate.prompting") if prompting else ("obliviate.empirical.lm",)
    return [name for name, cls in available_methods().items() if cls.__module__.startswith(families)]


def tiny_benchmark(seed: int = 0) -> AuthorsBenchmark:
    """The CPU suite's benchmark: 100 authors (forget01 = 1 author) x 4 QA pairs, 10 holdout authors."""
    return fictitious_authors(n_authors=100, qa_per_author=4, n_holdout=10, seed=seed)


def default_splits(bench: AuthorsBenchmark) -> tuple[list[str], str]:
    """The forget splits a run uses when none are named, and a note saying why: those of
    :data:`DEFAULT_SPLITS` that hold at least one author; a split that holds none (forget01 of
    fewer than 50 authors) is replaced by forget05 when that holds an author and is not already
    in, else dropped. Raises when no split is left (fewer than 5 authors)."""
    chosen, notes = [], []
    n = len(bench.trained_authors)
    for split in DEFAULT_SPLITS:
        for candidate in (split, FALLBACK_SPLIT):
            try:
                bench.forget_authors(candidate)
            except InvalidInputError:
                continue
            if candidate not in chosen:
                chosen.append(candidate)
                if candidate != split:
                    notes.append(f"{split} of {n} authors is no author: {candidate} instead")
            break
        else:
            notes.append(f"{split} of {n} authors is no author: left out")
    if not chosen:
        raise InvalidInputError(f"no forget split holds an author of this {n}-author benchmark; generate at least 5 authors.")
    return chosen, "; ".join(notes)


@dataclass
class ModelScores:
    """One model's per-item scores on one split (arrays) and its aggregates (floats)."""

    forget_tr: np.ndarray
    values: dict[str, float]
    mia_forget: dict[str, np.ndarray]


def _pair_scores(lm: LanguageModel, data: QADataset, *, normalise: bool) -> dict[str, Any]:
    """Prob, greedy ROUGE-L recall and truth ratio per item of ``data``."""
    k = len(data.items[0].perturbed_answers)
    questions = data.questions
    nll, n = metrics.answer_nll_of(lm, questions, data.answers)
    prob = metrics.answer_probability(nll, n)
    para_nll, para_n = metrics.answer_nll_of(lm, questions, data.paraphrased_answers)
    pert_q = [q for q in questions for _ in range(k)]
    pert_a = [a for item in data for a in item.perturbed_answers]
    pert_nll, pert_n = metrics.answer_nll_of(lm, pert_q, pert_a)
    pert_nll, pert_n = pert_nll.reshape(-1, k), pert_n.reshape(-1, k)
    if normalise:  # TOFU's world facts / real authors: Prob against the perturbed answers
        prob = metrics.normalised_answer_probability(prob, metrics.answer_probability(pert_nll.ravel(), pert_n.ravel()).reshape(-1, k))
    generated = free_answers(lm, questions, max_new_tokens=min(ANSWER_TOKENS, lm.max_length // 2))
    return {
        "prob": prob,
        "rouge": metrics.rouge_l_recall(generated, data.answers),
        "tr": metrics.truth_ratio(para_nll, pert_nll, para_n, pert_n),
        "generated": generated,
    }


def _mia_scores(lm: LanguageModel, data: QADataset) -> dict[str, np.ndarray]:
    """LOSS, zlib, Min-K% and Min-K%++ scores of the answers (higher = more non-member)."""
    nll, n = metrics.answer_nll_of(lm, data.questions, data.answers)
    lps, mus, sigmas = metrics.token_scores_of(lm, data.questions, data.answers)
    return {
        "loss": metrics.loss_score(nll, n),
        "zlib": metrics.zlib_score(nll, n, data.answers),
        "min_k": metrics.min_k(lps),
        "min_k_plus_plus": metrics.min_k_plus_plus(lps, mus, sigmas),
    }


def score_model(lm: LanguageModel, bench: AuthorsBenchmark, forget: QADataset, retain_eval: QADataset) -> ModelScores:
    """Every TOFU/MUSE quantity of ``lm`` that does not need another model (those are added by
    :func:`_compare`): forget/retain/utility Prob, ROUGE and truth-ratio aggregates, model
    utility, MIA AUCs forget vs holdout, perplexity and the degenerate-answer share."""
    f = _pair_scores(lm, forget, normalise=False)
    r = _pair_scores(lm, retain_eval, normalise=False)
    u = _pair_scores(lm, bench.utility, normalise=True)
    values = {
        "forget_prob": float(np.mean(f["prob"])),
        "forget_rouge": float(np.mean(f["rouge"])),
        "forget_truth_ratio": metrics.truth_ratio_closer_to_one(f["tr"]),
        "retain_prob": float(np.mean(r["prob"])),
        "retain_rouge": float(np.mean(r["rouge"])),
        "retain_truth_ratio": metrics.truth_ratio_true_better(r["tr"]),
        "utility_prob": float(np.mean(u["prob"])),
        "utility_rouge": float(np.mean(u["rouge"])),
        "utility_truth_ratio": metrics.truth_ratio_true_better(u["tr"]),
    }
    values["model_utility"] = metrics.model_utility(
        [values[f"{s}_{m}"] for s in ("retain", "utility") for m in ("prob", "rouge", "truth_ratio")]
    )
    mia_forget, mia_holdout = _mia_scores(lm, forget), _mia_scores(lm, bench.holdout)
    for attack in mia_forget:
        values[f"mia_auc_{attack}"] = metrics.mia_auc(mia_forget[attack], mia_holdout[attack])
    values["perplexity"] = metrics.perplexity_of(lm, bench.utility.paraphrased_answers)
    values["degenerate_share"] = metrics.degenerate_share(f["generated"] + r["generated"])
    return ModelScores(forget_tr=f["tr"], values=values, mia_forget=mia_forget)


def _compare(scores: ModelScores, retain: ModelScores, target: ModelScores) -> dict[str, float]:
    """The metrics taken against the retain model (forget quality, privleak) and the target."""
    return {
        "forget_quality": metrics.forget_quality(scores.forget_tr, retain.forget_tr),
        "privleak": metrics.privleak(scores.values["mia_auc_min_k"], retain.values["mia_auc_min_k"]),
        "utility_vs_target": scores.values["model_utility"] / target.values["model_utility"]
        if target.values["model_utility"] > 0
        else float("nan"),
    }


def _check_options(methods, splits, seeds, settings, bench) -> tuple[list[str], list[str], int, dict]:
    available = lm_methods()
    weight_methods = set(lm_methods(prompting=False))  # the default run: methods that change the weights
    chosen = list(methods) if methods is not None else [m for m in LM_METHODS if m in available] + sorted(
        weight_methods - set(LM_METHODS)
    )
    if not chosen and methods is None:
        raise InvalidInputError("no language-model methods are registered (obliviate.empirical.lm); pass methods=.")
    reserved = {ORACLE, ORIGINAL} & set(chosen)
    if reserved:
        raise InvalidInputError(f"{sorted(reserved)} are always in the results as the references; list only the methods.")
    if len(set(chosen)) != len(chosen):
        raise InvalidInputError(f"a method is listed twice in {chosen}; list each once.")
    splits = list(splits)
    if not splits:
        raise InvalidInputError("splits must name at least one forget split, e.g. forget10.")
    for split in splits:
        bench.forget_authors(split)  # unknown or impossible splits raise here, before any training
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise InvalidInputError(f"seeds must be a positive integer, got {seeds!r}.")
    settings = dict(settings or {})
    named = {part for m in chosen for part in m.split("+")}
    stray = sorted({k.partition(".")[0] for k in settings} - named)
    if stray or any("." not in k for k in settings):
        raise InvalidInputError(
            f"bench settings are method.key=value for methods in this run ({', '.join(chosen)}); got {sorted(settings)}."
        )
    return chosen, splits, seeds, settings


def _settings_for(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    parts = set(method.split("+"))
    if len(parts) == 1:
        return {k.partition(".")[2]: v for k, v in settings.items() if k.partition(".")[0] in parts}
    return {k: v for k, v in settings.items() if k.partition(".")[0] in parts}


def run_authors(
    model: str | Path | LanguageModel = "tiny",
    *,
    methods: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    seeds: int = 1,
    settings: Mapping[str, Any] | None = None,
    show_progress: bool = True,
    benchmark: AuthorsBenchmark | None = None,
    recipe: FinetuneRecipe | None = None,
    relearn: bool = True,
    cache: bool | str | Path = True,
    console: Console | None = None,
    retain_eval_items: int = RETAIN_EVAL_ITEMS,
) -> dict[str, Any]:
    """Benchmark LM unlearning methods on the fictitious authors; returns the results document.

    ``model``: ``"tiny"`` (a tiny GPT trained from scratch, the CPU default), ``"smollm2"``, a
    local HF folder or a LanguageModel. ``benchmark`` defaults to :func:`tiny_benchmark` for the
    tiny model and the full TOFU-sized ``fictitious_authors()`` (100 x 20) otherwise. ``splits``
    default to :func:`default_splits` (forget10 and forget01, forget05 for forget01 on fewer than
    50 authors; said in ``config["splits_note"]``); named splits that hold no author raise.
    Methods run with their defaults for the model's family (``config["method_settings"]`` has
    the values used) unless ``settings`` names them. Per split
    and seed the rows hold, for ``original`` (the target), ``retrain`` (the retain model) and each
    method: ``forget_quality``, ``model_utility``, ``utility_vs_target``, ``forget_prob``,
    ``forget_rouge``, ``forget_truth_ratio``, retain/utility Prob, ROUGE and truth ratio,
    ``mia_auc_{loss,zlib,min_k,min_k_plus_plus}``, ``privleak``, ``perplexity``,
    ``degenerate_share``, ``relearn_steps``, ``seconds``, ``gradient_steps`` and ``time_fraction``
    (seconds over the retain model's training seconds). Model utility's retain part is scored on a
    seeded sample of ``retain_eval_items`` retain items (TOFU: 400; default 120).
    """
    from obliviate.unlearning import make_method, unlearn

    console = console or Console(stderr=True)
    if benchmark is None:
        benchmark = tiny_benchmark() if model == "tiny" else fictitious_authors()
    splits_note = ""
    if splits is None:
        splits, splits_note = default_splits(benchmark)
        if splits_note:
            console.print(f"[yellow]splits:[/] {splits_note}.")
    chosen, splits, seeds, settings = _check_options(methods, splits, seeds, settings, benchmark)
    if isinstance(retain_eval_items, bool) or not isinstance(retain_eval_items, int) or retain_eval_items < 2:
        raise InvalidInputError(f"retain_eval_items must be an integer >= 2, got {retain_eval_items!r}.")
    unlearners = {m: make_method(m, _settings_for(m, settings)) for m in chosen}  # validates names and keys first
    base = base_model(model, benchmark)
    recipe = recipe or recipe_for(base)
    results = new_results(
        "authors",
        {
            "description": "TOFU-style unlearning of fictitious authors (Maini et al. 2024)",
            "model": base.name,
            "benchmark": {"authors": len(benchmark.trained_authors), "holdout_authors": len(benchmark.holdout.owner_names),
                          "items": len(benchmark.train), "utility_items": len(benchmark.utility), "seed": benchmark.seed},
            "recipe": recipe.to_dict(),
            "methods": chosen,
            "scenarios": splits,
            "seeds": seeds,
            "settings": {k: str(v) for k, v in settings.items()},
            "splits_note": splits_note,
            "retain_eval_items": retain_eval_items,
            "model_family": model_family(base),
            "method_settings": {},
            "failures": [],
        },
    )
    total = seeds * (1 + len(splits) * (2 + len(chosen)))
    progress = new_progress(console=console, disable=not show_progress, transient=False)
    with progress:
        task = progress.add_task(f"authors / {base.name}", total=total)

        def step(text: str) -> None:
            progress.update(task, description=text)

        for seed in range(seeds):
            step(f"seed {seed}: training the target")
            target_run = target_model(base, benchmark, recipe=recipe.with_seed(seed), cache=cache)
            progress.advance(task)
            for split in splits:
                _run_split(results, benchmark, base, target_run, split, seed, recipe, unlearners, relearn, cache, retain_eval_items,
                           step, lambda: progress.advance(task), unlearn)
    return results


def _run_split(results, bench, base, target_run, split, seed, recipe, unlearners, relearn, cache, n_eval, step, advance, unlearn):
    forget, retain = bench.forget(split), bench.retain(split)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(retain.ids, size=min(n_eval, len(retain)), replace=False))
    retain_eval = retain.subset(sample, name=f"{retain.name}/eval")
    step(f"{split} seed {seed}: training the retain model")
    retain_run = retain_model(base, bench, split, recipe=recipe.with_seed(seed), cache=cache)
    advance()
    step(f"{split} seed {seed}: scoring the references")
    target_scores = score_model(target_run.lm, bench, forget, retain_eval)
    retain_scores = score_model(retain_run.lm, bench, forget, retain_eval)
    target_prob = RELEARN_FRACTION * target_scores.values["forget_prob"]

    def record(method: str, lm: LanguageModel, scores: ModelScores, seconds: float, steps: int) -> None:
        values = dict(scores.values)
        values.update(_compare(scores, retain_scores, target_scores))
        if relearn:
            values["relearn_steps"] = metrics.relearn_steps(lm, forget, target_prob=target_prob, seed=seed, max_steps=RELEARN_MAX_STEPS)
        values["seconds"] = seconds
        values["gradient_steps"] = steps
        values["time_fraction"] = seconds / retain_run.seconds if retain_run.seconds > 0 else float("nan")
        for name, value in values.items():
            add_row(results, split, method, seed, name, value)

    record(ORIGINAL, target_run.lm, target_scores, 0.0, 0)
    record(ORACLE, retain_run.lm, retain_scores, retain_run.seconds, 0)
    advance()
    request = bench.request(split)
    for name, unlearner in unlearners.items():
        step(f"{split} seed {seed}: {name}")
        start = time.perf_counter()
        try:
            run = unlearn(target_run.lm, request, bench.train, method=unlearner, seed=seed)
            scores = score_model(run.model, bench, forget, retain_eval)
        except ObliviateError as exc:
            results["config"]["failures"].append({"scenario": split, "method": name, "seed": seed, "error": str(exc)})
        else:
            seconds = run.cost.seconds if run.cost.seconds > 0 else time.perf_counter() - start
            results["config"]["method_settings"][name] = {k: repr(v) for k, v in dict(run.config).items()}
            record(name, run.model, scores, seconds, run.cost.gradient_steps)
        advance()
