"""The ``knowledge`` suite: unlearn a domain of real facts a pretrained model knows (WMDP's setting).

Steps (one seed): build the benchmark (:func:`obliviate.data.knowledge.knowledge_benchmark`); score
every candidate question with the original model and keep those it answers well above chance
(multiple choice: correct with at least ``keep_p`` of the choice-softmax; short answer: correct);
run each LM method on the corpora with the forget domain's request; score every model on the kept
questions per probe (the scope table), on held-out English prose (perplexity), and attack each (the
original too) with :mod:`obliviate.evaluation.attacks`. Rows go into the ``obliviate.results/1``
document with scenario ``forget-<domain>``; ``config["knowledge"]`` holds the filter counts, notes on
sets too small for the stated confidence, attack details and the collapse flags.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from obliviate.bench.results import ORIGINAL, add_row, new_results
from obliviate.data.knowledge import N_CHOICES, SOURCES, KnowledgeBenchmark, Question, knowledge_benchmark
from obliviate.errors import InvalidInputError, ObliviateError
from obliviate.evaluation import knowledge as kn
from obliviate.models.lm import LanguageModel
from obliviate.progress import new_progress

__all__ = [
    "KnowledgeConfig",
    "KNOWLEDGE_METHODS",
    "SUITE_SETTINGS",
    "ATTACKS",
    "run_knowledge",
    "score_knowledge",
    "filter_questions",
    "collapsed",
]

KNOWLEDGE_METHODS = ("rmu", "npo", "grad_diff", "task_vector", "whp")
ATTACKS = ("relearn", "quantize_8bit", "quantize_4bit", "in_context", "linear_probe")
CHANCE = 1.0 / N_CHOICES
COLLAPSE_MARGIN = 0.10  # retain accuracy within this of chance = the model collapsed

SUITE_SETTINGS: dict[str, dict[str, Any]] = {
    # The suite's own settings, on top of each method's model-family defaults. RMU and task vectors
    # take their family defaults (for SmolLM2 chosen on this suite's validation split: 2 epochs).
    # GradDiff, NPO and WHP were not searched (CPU time): 2 epochs so the CPU suite fits its time
    # limit; with that few steps the family lr of GradDiff and NPO (set for 10-epoch runs) barely
    # moves SmolLM2, so they take 1e-4 with a half-epoch warm-up.
    "npo": {"epochs": 2, "lr": 1e-4, "warmup_epochs": 0.5},
    "grad_diff": {"epochs": 2, "lr": 1e-4, "warmup_epochs": 0.5},
    "whp": {"epochs": 2, "reinforce_epochs": 2},
}
"""Suite-specific method settings; ``settings=`` given to :func:`run_knowledge` override them."""


@dataclass(frozen=True)
class KnowledgeConfig:
    """Sizes and attack settings of one run. ``limits``: subjects per domain; ``forget_probes``,
    ``retain_probes``: the probes scored; ``keep_p``: the filter's minimum choice-softmax share of
    the correct answer (chance is 1/4); ``margin``/``confidence``: the accuracy resolution asked of
    each question set (a note says when a set is too small); ``texts_per_subject``: corpus texts
    per subject; attack settings follow :mod:`obliviate.evaluation.attacks`."""

    forget: str = "elements"
    retain: tuple[str, ...] = ("geography", "compounds")
    limits: Mapping[str, int] = field(default_factory=lambda: {"elements": 40, "geography": 30, "compounds": 30})
    split: str = "test"
    validation_fraction: float = 0.25
    forget_probes: tuple[str, ...] = ("mcq", "paraphrase", "reverse", "short")
    retain_probes: tuple[str, ...] = ("mcq",)
    keep_p: float = 0.5
    texts_per_subject: int = 2
    perplexity_texts: int = 12
    margin: float = 0.05
    confidence: float = 0.95
    relearn_steps: int = 10
    relearn_lr: float = 1e-4
    relearn_batch: int = 4
    shots: int = 5
    group_size: int = 128
    answer_tokens: int = 8
    batch_size: int = 32

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["limits"] = dict(self.limits)
        return d


def _ids_by(questions: Sequence[Question]) -> dict[str, Question]:
    return {q.id: q for q in questions}


def score_knowledge(
    lm: LanguageModel, questions: Sequence[Question], *, config: KnowledgeConfig, prefix: str = ""
) -> dict[str, float]:
    """Per question id: 1.0 if ``lm`` answers it right, else 0.0 (multiple choice by log-likelihood,
    short answers by the greedy answer); ``<id>#p`` holds the correct choice's softmax share and
    ``<id>#norm`` the ``acc_norm`` outcome of a multiple-choice question."""
    from obliviate.lm.generate import free_answers

    out: dict[str, float] = {}
    mcq = [q for q in questions if q.multiple_choice]
    short = [q for q in questions if not q.multiple_choice]
    if mcq:
        s = kn.score_choices(lm, mcq, prefix=prefix, batch_size=config.batch_size)
        for q, a, n, p in zip(mcq, s.acc, s.acc_norm, s.p_correct):
            out[q.id], out[f"{q.id}#norm"], out[f"{q.id}#p"] = float(a), float(n), float(p)
    if short:
        answers = free_answers(lm, [prefix + q.question for q in short], max_new_tokens=config.answer_tokens)
        for q, ok in zip(short, kn.short_answer_correct(answers, [q.correct for q in short])):
            out[q.id] = float(ok)
    return out


def filter_questions(
    bench: KnowledgeBenchmark, scores: Mapping[str, float], *, keep_p: float
) -> tuple[KnowledgeBenchmark, dict]:
    """Keep the questions the original answers well above chance; return the kept benchmark and
    the counts (kept / dropped, and the original's accuracy before filtering) per role and probe."""
    kept, stats = [], {}
    for q in bench.questions:
        if q.id not in scores:
            continue
        good = scores[q.id] == 1.0 and (not q.multiple_choice or scores[f"{q.id}#p"] >= keep_p)
        key = f"{bench.role(q)}/{q.probe}"
        entry = stats.setdefault(key, {"candidates": 0, "kept": 0, "dropped": 0, "correct_before_filter": 0})
        entry["candidates"] += 1
        entry["correct_before_filter"] += int(scores[q.id] == 1.0)
        entry["kept" if good else "dropped"] += 1
        if good:
            kept.append(q.id)
    for entry in stats.values():
        entry["accuracy_before_filter"] = entry.pop("correct_before_filter") / entry["candidates"]
    return bench.keep(kept), stats


def collapsed(retain_accuracy: float, *, chance: float = CHANCE) -> bool:
    """Whether a model's retain accuracy is near chance (within :data:`COLLAPSE_MARGIN`)."""
    return retain_accuracy <= chance + COLLAPSE_MARGIN


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _scope(bench: KnowledgeBenchmark, scores: Mapping[str, float]) -> dict[str, float]:
    """The scope table's row: forget accuracy per probe, neighbour and retain accuracy (+ acc_norm)."""
    values: dict[str, float] = {}
    for q_role in ("forget", "neighbour", "retain"):
        chosen = bench.select(role=q_role)
        probes = sorted({q.probe for q in chosen})
        for probe in probes:
            qs = [q for q in chosen if q.probe == probe]
            key = f"{q_role}_{probe}" if q_role == "forget" else f"{q_role}_{probe}" if len(probes) > 1 else q_role
            values[f"{key}_accuracy"] = _mean([scores[q.id] for q in qs])
        mc = [q for q in chosen if q.multiple_choice]
        if mc:
            values[f"{q_role}_mcq_all_accuracy"] = _mean([scores[q.id] for q in mc])
            values[f"{q_role}_mcq_all_acc_norm"] = _mean([scores[f"{q.id}#norm"] for q in mc])
    values["retain_accuracy"] = _mean([scores[q.id] for q in bench.select(role="retain") if q.multiple_choice])
    if bench.select(role="neighbour"):
        values["neighbour_accuracy"] = _mean(
            [scores[q.id] for q in bench.select(role="neighbour") if q.multiple_choice]
        )
    return values


def _check_methods(methods: Sequence[str] | None, settings: Mapping[str, Any]) -> list[str]:
    from obliviate.bench.lm import lm_methods

    available = lm_methods()
    chosen = list(methods) if methods is not None else [m for m in KNOWLEDGE_METHODS if m in available]
    unknown = [m for m in chosen if m not in available]
    if unknown:
        raise InvalidInputError(f"unknown language-model method(s) {unknown}; choose from {', '.join(available)}.")
    if len(set(chosen)) != len(chosen) or ORIGINAL in chosen:
        raise InvalidInputError(f"list each method once (and not {ORIGINAL!r}, always present): {chosen}.")
    stray = sorted({k.partition(".")[0] for k in settings} - set(chosen))
    if stray or any("." not in k for k in settings):
        raise InvalidInputError(
            f"settings are method.key=value for methods in this run ({', '.join(chosen)}); got {sorted(settings)}."
        )
    return chosen


def _method_settings(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(SUITE_SETTINGS.get(method, {}))
    out.update({k.partition(".")[2]: v for k, v in settings.items() if k.partition(".")[0] == method})
    return out


def _corpus(bench: KnowledgeBenchmark, per_subject: int):  # noqa: ANN202 - a QADataset
    count: dict[str, int] = {}
    keep = []
    for item in bench.corpus:
        count[item.owner] = count.get(item.owner, 0) + 1
        if count[item.owner] <= per_subject:
            keep.append(item.id)
    return bench.corpus.subset(keep)


def run_knowledge(
    model: str | Path | LanguageModel = "smollm2",
    *,
    methods: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    config: KnowledgeConfig | None = None,
    seed: int = 0,
    attacks: Sequence[str] | None = ATTACKS,
    strict: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Benchmark LM methods on the knowledge suite; returns the results document.

    ``model``: ``"smollm2"`` (the default), ``"tiny"`` is refused (a model trained from scratch
    knows no facts), a local HF folder or a LanguageModel. ``attacks``: the attacks run on every
    model (None or () for none). ``strict``: raise :class:`~obliviate.evaluation.knowledge.TooFewQuestionsError`
    when a kept question set cannot resolve ``config.margin`` at ``config.confidence`` (else a note).
    Metrics per method (scenario ``forget-<domain>``, the seed): ``forget_<probe>_accuracy``,
    ``forget_mcq_all_accuracy``/``_acc_norm``, ``neighbour_accuracy``, ``retain_accuracy``,
    ``perplexity``, ``retain_vs_original``, ``perplexity_vs_original``, ``collapsed`` (1/0),
    ``heldout_forget_accuracy`` (the attacks' scorer), ``attack_<name>`` (score after the attack),
    ``seconds``, ``gradient_steps``.
    """
    from obliviate.models.lm import load_language_model
    from obliviate.unlearning import make_method, unlearn

    console = console or Console(stderr=True)
    config = config or KnowledgeConfig()
    settings = dict(settings or {})
    if model == "tiny":
        raise InvalidInputError(
            "the knowledge suite needs a pretrained model that knows facts: use --model smollm2 or a model folder."
        )
    chosen = _check_methods(methods, settings)
    unlearners = {m: make_method(m, _method_settings(m, settings)) for m in chosen}  # validates keys first
    attacks = tuple(attacks or ())
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        raise InvalidInputError(f"unknown attack(s) {bad}; choose from {', '.join(ATTACKS)}.")
    bench = knowledge_benchmark(
        forget=config.forget,
        retain=config.retain,
        seed=seed,
        limit=dict(config.limits),
        validation_fraction=config.validation_fraction,
    ).part(config.split)
    lm = load_language_model(model)
    scenario = f"forget-{bench.forget_domain}"
    texts = kn.heldout_english(n_texts=config.perplexity_texts, seed=seed)
    candidates = [
        q
        for q in bench.questions
        if q.probe in (config.forget_probes if bench.role(q) == "forget" else config.retain_probes)
        or (bench.role(q) == "neighbour" and q.probe in config.retain_probes)
    ]
    notes: list[str] = []
    info: dict[str, Any] = {
        "sources": SOURCES,
        "filter": {},
        "notes": notes,
        "attacks": {},
        "collapsed": [],
        "relearn_owners": list(bench.relearn_owners),
        "perplexity_source": "pydoc_data.topics (Python stdlib docs)",
    }
    results = new_results(
        "knowledge",
        {
            "kind": "knowledge",
            "description": f"unlearn the {bench.forget_domain} domain of real facts (WMDP-style), keep {', '.join(bench.retain_domains)}",
            "model": lm.name,
            "methods": chosen,
            "scenarios": [scenario],
            "seeds": 1,
            "config": config.to_dict(),
            "settings": {m: {k: str(v) for k, v in _method_settings(m, settings).items()} for m in chosen},
            "failures": [],
            "knowledge": info,
        },
    )
    total = 2 + len(chosen) * 2 + (len(chosen) + 1) * (1 if attacks else 0)
    progress = new_progress(console=console, disable=not show_progress, transient=False)
    t_start = time.perf_counter()
    with progress:
        task = progress.add_task(f"knowledge / {lm.name}", total=total)

        timings: dict[str, float] = {}
        info["stage_seconds"] = timings
        last = {"name": "", "t": time.perf_counter()}

        def step(text: str) -> None:
            now = time.perf_counter()
            if last["name"]:
                timings[last["name"]] = round(timings.get(last["name"], 0.0) + now - last["t"], 1)
            last["name"], last["t"] = text, now
            progress.update(task, description=text)

        step("original: scoring every candidate question")
        base_scores = score_knowledge(lm, candidates, config=config)
        kept, stats = filter_questions(replace_questions(bench, candidates), base_scores, keep_p=config.keep_p)
        info["filter"] = stats
        for key, entry in stats.items():
            if entry["kept"] == 0:
                notes.append(
                    f"{key}: the original answers none of {entry['candidates']} questions well above chance; not scored"
                )
        _size_notes(kept, config, notes, strict)
        heldout = kept.select(role="forget", probe="mcq", owners=kept.heldout_owners())
        if not heldout:
            raise InvalidInputError(
                "no held-out forget question survived the filter; use more subjects (config.limits)."
            )
        progress.advance(task)

        step("original: perplexity")
        base_ppl = kn.heldout_perplexity(lm, texts)
        base_vals = _scope(kept, base_scores)
        corpus = _corpus(kept, config.texts_per_subject)
        info["corpus"] = {
            "items": len(corpus),
            "forget_items": int(sum(o in set(kept.forget_owners) for o in corpus.owners)),
            "texts_per_subject": config.texts_per_subject,
        }

        def record(
            method: str, model_lm: LanguageModel, scores: Mapping[str, float], ppl: float, seconds: float, steps: int
        ) -> None:
            vals = _scope(kept, scores)
            vals["perplexity"] = ppl
            vals["retain_vs_original"] = (
                vals["retain_accuracy"] / base_vals["retain_accuracy"] if base_vals["retain_accuracy"] else float("nan")
            )
            vals["perplexity_vs_original"] = ppl / base_ppl
            vals["heldout_forget_accuracy"] = _mean([scores[q.id] for q in heldout])
            vals["collapsed"] = float(collapsed(vals["retain_accuracy"]))
            if vals["collapsed"]:
                info["collapsed"].append(method)
            vals["seconds"], vals["gradient_steps"] = seconds, steps
            for name, value in vals.items():
                add_row(results, scenario, method, seed, name, value)

        record(ORIGINAL, lm, base_scores, base_ppl, 0.0, 0)
        progress.advance(task)
        request = kept.request()
        # Attacks run on each model as soon as it is scored, then the model is let go: the run holds the original and
        # one unlearned model (and an attack's copy) at a time, not every model at once (11 GB at the CLI defaults).
        attacker = (
            _Attacks(
                results, scenario, seed, kept, heldout, lm, config, attacks, info, step, lambda: progress.advance(task)
            )
            if attacks
            else None
        )
        if attacker is not None:
            attacker.run(ORIGINAL, lm)
        for name, unlearner in unlearners.items():
            step(f"{name}: unlearning")
            start = time.perf_counter()
            try:
                run = unlearn(lm, request, corpus, method=unlearner, seed=seed)
                progress.advance(task)
                step(f"{name}: scoring")
                scores = score_knowledge(run.model, kept.questions, config=config)
                ppl = kn.heldout_perplexity(run.model, texts)
            except ObliviateError as exc:
                results["config"]["failures"].append(
                    {"scenario": scenario, "method": name, "seed": seed, "error": str(exc)}
                )
                progress.advance(task)
            else:
                seconds = run.cost.seconds if run.cost.seconds > 0 else time.perf_counter() - start
                record(name, run.model, scores, ppl, seconds, run.cost.gradient_steps)
                results["config"]["settings"][name] = (
                    {k: str(v) for k, v in run.config.items()}
                    if isinstance(run.config, Mapping)
                    else results["config"]["settings"][name]
                )
                if attacker is not None:
                    attacker.run(name, run.model)
                del run  # the unlearned model goes before the next one is made
            progress.advance(task)
        if attacker is not None:
            attacker.finish()
        step("done")
    info["seconds_total"] = time.perf_counter() - t_start
    return results


def replace_questions(bench: KnowledgeBenchmark, questions: Sequence[Question]) -> KnowledgeBenchmark:
    """``bench`` holding only ``questions`` (those the run scores)."""
    return bench.keep([q.id for q in questions])


def _size_notes(bench: KnowledgeBenchmark, config: KnowledgeConfig, notes: list[str], strict: bool) -> None:
    groups: dict[str, int] = {}
    for q in bench.questions:
        if q.multiple_choice:
            key = f"{bench.role(q)}/{q.probe}"
            groups[key] = groups.get(key, 0) + 1
    for key, n in sorted(groups.items()):
        text = kn.check_question_count(
            n, what=key, margin=config.margin, chance=CHANCE, confidence=config.confidence, strict=strict
        )
        if text:
            notes.append(text)


class _Attacks:
    """Every attack on one model at a time; rows ``attack_<name>`` (after) and details in config["knowledge"]["attacks"].

    Built once per scenario (the relearn texts, in-context examples and probe groups are the same for every model);
    :meth:`run` attacks one model and keeps nothing of it afterwards, so the caller can let the model go."""

    def __init__(self, results, scenario, seed, bench, heldout, original, config, attacks, info, step, advance) -> None:
        self.results, self.scenario, self.seed, self.heldout = results, scenario, seed, heldout
        self.config, self.attacks, self.info, self.step, self.advance = config, attacks, info, step, advance
        relearn_owners = set(bench.relearn_owners)
        self.texts = [it.answer for it in bench.corpus if it.owner in relearn_owners]
        self.examples = bench.relearn_examples()
        self.train_groups = [
            ([original.prompt(q.question) + c for c in q.choices], q.answer)
            for q in bench.attack_questions
            if q.multiple_choice
        ]
        self.test_groups = [([original.prompt(q.question) + c for c in q.choices], q.answer) for q in heldout]

    def run(self, name: str, model_lm: LanguageModel) -> None:
        from obliviate.evaluation import attacks as atk

        config, seed = self.config, self.seed
        memo: dict[tuple, float] = {}  # the model as given is scored once, not once per attack

        def score_prefix(scored: LanguageModel, shots: Sequence[tuple[str, str]]) -> float:
            # only the model as given is memoised (an attack's copies differ); a prompted model shares the original's
            # network but answers differently, so the memo lives and dies with this one model
            key = tuple(shots)
            if scored is model_lm and key in memo:
                return memo[key]
            value = float(kn.score_choices(scored, self.heldout, shots=shots, batch_size=config.batch_size).acc.mean())
            if scored is model_lm:
                memo[key] = value
            return value

        def score(scored: LanguageModel) -> float:
            return score_prefix(scored, ())

        self.step(f"{name}: attacks")
        details: dict[str, Any] = {}
        for attack in self.attacks:
            try:
                if attack == "relearn":
                    r = atk.relearn_attack(
                        model_lm,
                        self.texts,
                        score,
                        steps=config.relearn_steps,
                        lr=config.relearn_lr,
                        batch_size=config.relearn_batch,
                        seed=seed,
                        chance=CHANCE,
                    )
                elif attack.startswith("quantize_"):
                    r = atk.quantization_attack(
                        model_lm, score, bits=int(attack.split("_")[1][0]), group_size=config.group_size, chance=CHANCE
                    )
                elif attack == "in_context":
                    r = atk.in_context_attack(
                        model_lm,
                        score_prefix,
                        self.examples,
                        shots=min(config.shots, len(self.examples)),
                        seed=seed,
                        chance=CHANCE,
                        layout="turns",
                    )
                else:
                    r = atk.linear_probe_attack(model_lm, self.train_groups, self.test_groups, seed=seed)
            except (ObliviateError, ValueError) as exc:
                self.results["config"]["failures"].append(
                    {"scenario": self.scenario, "method": name, "seed": seed, "error": f"{attack}: {exc}"}
                )
                continue
            add_row(self.results, self.scenario, name, seed, f"attack_{attack}", r.after)
            if attack == "linear_probe":
                add_row(self.results, self.scenario, name, seed, "attack_linear_probe_before", r.before)
            details[attack] = {
                "before": r.before,
                "after": r.after,
                "chance": r.chance,
                **{k: v for k, v in r.details.items() if isinstance(v, int | float | str | bool) or v is None},
            }
        self.info["attacks"][name] = details
        self.advance()

    def finish(self) -> None:
        self.info["attack_setup"] = {
            "scored_on": f"{len(self.heldout)} held-out forget MCQs (owners outside the relearn slice)",
            "relearn_texts": len(self.texts),
            "in_context_examples": len(self.examples),
            "probe_train_groups": len(self.train_groups),
            "probe_test_groups": len(self.test_groups),
        }
