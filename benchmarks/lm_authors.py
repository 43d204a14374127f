"""Language-model unlearning on the fictitious authors: every LM method against the retain model.

For each forget split (forget10, forget01) the authors suite runner
(:func:`obliviate.bench.lm.run_authors`) trains the target (all authors) and the retain model
(the oracle, never saw the split's authors), runs every LM method on the target with its default
settings, and scores them TOFU's way. This script reports, per split and method: forget quality
(KS p-value of the forget truth ratios against the retain model's), model utility relative to the
target's, forget ROUGE-L recall, MUSE privleak (Min-40% AUC against the retain model's, MUSE's
orientation; 0 is ideal, an un-unlearned target near -100), relearn steps and time relative to retraining (the method's seconds over the retain
model's training seconds). It checks the issue's target: at least one method with forget
quality >= 0.1 at model utility >= 0.95x the target's; and it names the methods that collapse
(model utility 0, or below half the target's) and those that fail to forget (forget quality
not above the target's own).

Writes the ``lm-authors-<model>`` block of benchmarks/RESULTS.md, the results document to
benchmarks/plots/lm_authors_<model>.json and the TOFU plots (forget quality on a log axis
against model utility) to benchmarks/plots/lm_authors_<model>_<split>.png.

    .venv/bin/python benchmarks/lm_authors.py                 # tiny GPT (minutes on 2 cores)
    .venv/bin/python benchmarks/lm_authors.py --model smollm2 # SmolLM2-135M-Instruct (TOFU-sized: hours on a CPU)
    .venv/bin/python benchmarks/lm_authors.py --model smollm2 --authors 20 --qa 4  # a CPU-sized run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from obliviate.bench.lm import RETAIN_EVAL_ITEMS, lm_methods, run_authors
from obliviate.bench.results import ORACLE, ORIGINAL
from obliviate.data.authors import fictitious_authors
from obliviate.errors import ObliviateError
from obliviate.report.lm import lm_leaderboard, tofu_chart
from obliviate.storage import atomic_write_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import write_block  # noqa: E402

PLOTS = Path(__file__).resolve().parent / "plots"
TARGET_FQ = 0.1
TARGET_UTILITY = 0.95
COLLAPSE_UTILITY = 0.5
FAIL_PROB_FRACTION = 0.9  # a forget Prob still at 90% of the target's: nothing was forgotten


def _fmt_p(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def verdicts(board: list[dict]) -> dict[str, list[str]]:
    """Which methods meet the target, collapse, or fail to forget, from one split's leaderboard."""
    target = next((e for e in board if e["method"] == ORIGINAL), {})
    target_fq = target.get("forget_quality", 0.0) or 0.0
    out: dict[str, list[str]] = {"meets": [], "collapses": [], "fails": []}
    for e in board:
        if e["role"] != "unlearner":
            continue
        fq, ratio = e.get("forget_quality") or 0.0, e.get("utility_vs_target") or 0.0
        if fq >= TARGET_FQ and ratio >= TARGET_UTILITY and fq > target_fq:
            out["meets"].append(e["method"])
        if (e.get("model_utility") or 0.0) == 0.0 or ratio < COLLAPSE_UTILITY:
            out["collapses"].append(e["method"])
        no_drop = (e.get("forget_prob") or 0.0) >= FAIL_PROB_FRACTION * (target.get("forget_prob") or 0.0)
        if no_drop or (target_fq < TARGET_FQ and fq <= target_fq):
            out["fails"].append(e["method"])
    return out


def table(board: list[dict]) -> list[str]:
    lines = [
        "| method | forget quality | model utility | utility / target | forget Prob | forget ROUGE | privleak % "
        "| relearn steps | time / retrain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in board:
        name = {ORACLE: "retain model (oracle)", ORIGINAL: "target (no unlearning)"}.get(e["method"], e["method"])
        lines.append(
            f"| {name} | {_fmt_p(e.get('forget_quality'))} | {_fmt(e.get('model_utility'), '.3f')} "
            f"| {_fmt(e.get('utility_vs_target'), '.2f')}x | {_fmt(e.get('forget_prob'), '.3f')} "
            f"| {_fmt(e.get('forget_rouge'), '.3f')} | {_fmt(e.get('privleak'), '+.1f')} "
            f"| {_fmt(e.get('relearn_steps'), '.0f')} | {_fmt(e.get('time_fraction'), '.3f')}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny (default), smollm2, or a local HF model folder")
    parser.add_argument("--splits", default=None,
                        help="comma-separated forget splits (default: forget10 and forget01, forget05 for forget01 "
                        "when the benchmark has under 50 authors)")
    parser.add_argument("--methods", default=None, help="comma-separated (default: every LM method)")
    parser.add_argument("--no-relearn", action="store_true", help="skip the relearn-steps metric")
    parser.add_argument("--authors", type=int, default=None,
                        help="a smaller benchmark: this many authors (with --qa); default: the runner's for the model")
    parser.add_argument("--qa", type=int, default=4, help="QA pairs per author with --authors (default 4)")
    parser.add_argument("--retain-eval", type=int, default=RETAIN_EVAL_ITEMS,
                        help=f"retain items scored for model utility (default {RETAIN_EVAL_ITEMS}; TOFU: 400)")
    parser.add_argument("--world-facts", type=int, default=None,
                        help="score model utility on the first N world facts only (default: all)")
    parser.add_argument("--cache", default=None, help="model cache folder (default: $OBLIVIATE_CACHE)")
    parser.add_argument("--tag", default=None,
                        help="name for the block, JSON and plots (default: the model's; e.g. to run methods in parallel)")
    parser.add_argument("--results", default=None,
                        help="markdown file the block goes into (default: benchmarks/RESULTS.md)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default min(2, cores)); 1 is far faster on a machine other jobs keep busy "
                        "(2 threads spin-wait on each other: a SmolLM2 forward pass measured 15x slower at load 10)")
    parser.add_argument("--merge", default=None,
                        help="comma-separated results JSONs of parallel runs: write one block from them and exit")
    args = parser.parse_args()
    if args.merge:
        tag = args.tag or "smollm2"
        lines, _ = render(merge(args.merge.split(",")), tag)
        write_block(f"lm-authors-{tag}", "\n".join(lines), **({"path": Path(args.results)} if args.results else {}))
        print("\n".join(lines))
        return
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    methods = args.methods.split(",") if args.methods else lm_methods()
    splits = args.splits.split(",") if args.splits else None
    tag = args.tag or ("tiny" if args.model == "tiny" else Path(args.model).name.replace("_", "-"))
    out_file = {"path": Path(args.results)} if args.results else {}

    benchmark = None
    if args.authors is not None:
        benchmark = fictitious_authors(n_authors=args.authors, qa_per_author=args.qa, n_holdout=max(2, args.authors // 10))
    if args.world_facts is not None:
        if benchmark is None:
            raise SystemExit("--world-facts needs --authors (a benchmark built here)")
        facts = benchmark.utility
        benchmark = dataclasses.replace(benchmark, utility=facts.subset(facts.ids[: args.world_facts], name=f"{facts.name}[:{args.world_facts}]"))
    start = time.perf_counter()
    try:
        results = run_authors(
            args.model,
            methods=methods,
            splits=splits,
            relearn=not args.no_relearn,
            cache=args.cache or True,
            show_progress=True,
            benchmark=benchmark,
            retain_eval_items=args.retain_eval,
        )
    except ObliviateError as exc:  # e.g. SmolLM2 not installed: say so in the block instead of old numbers
        note = f"### Language-model unlearning, fictitious authors, {args.model}\n\n`{' '.join(sys.argv)}`: not run here: {exc}\n"
        write_block(f"lm-authors-{tag}", note, **out_file)
        print(note)
        raise SystemExit(1) from exc
    wall = time.perf_counter() - start
    command = "python benchmarks/lm_authors.py" + ("" if args.model == "tiny" else f" --model {args.model}")
    if args.splits:
        command += f" --splits {args.splits}"
    if args.methods:
        command += f" --methods {args.methods}"
    if args.no_relearn:
        command += " --no-relearn"
    if args.authors is not None:
        command += f" --authors {args.authors} --qa {args.qa}"
    if args.retain_eval != RETAIN_EVAL_ITEMS:
        command += f" --retain-eval {args.retain_eval}"
    if args.world_facts is not None:
        command += f" --world-facts {args.world_facts}"
    if args.tag:
        command += f" --tag {args.tag}"
    if args.threads:
        command += f" --threads {args.threads}"
    results["config"]["command"], results["config"]["wall_seconds"] = command, wall
    PLOTS.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(PLOTS / f"lm_authors_{tag}.json", json.dumps(results, indent=1, default=str).encode())
    lines, met_any = render(results, tag)
    write_block(f"lm-authors-{tag}", "\n".join(lines), **out_file)
    print("\n".join(lines))
    print({split: met for split, met in met_any.items()})


def merge(paths: list[str]) -> dict:
    """One results document from runs of the same benchmark with different methods (run in parallel):
    rows of the references (target, retain model) are taken once; the commands are listed."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    out = docs[0]
    seen = {(r["scenario"], r["method"], r["seed"], r["metric"]) for r in out["rows"]}
    for doc in docs[1:]:
        if doc["config"]["benchmark"] != out["config"]["benchmark"] or doc["config"]["recipe"] != out["config"]["recipe"]:
            raise SystemExit(f"cannot merge runs of different benchmarks or recipes: {paths}")
        for row in doc["rows"]:
            key = (row["scenario"], row["method"], row["seed"], row["metric"])
            if key not in seen:
                seen.add(key)
                out["rows"].append(row)
        out["config"]["methods"] += [m for m in doc["config"]["methods"] if m not in out["config"]["methods"]]
        out["config"]["method_settings"].update(doc["config"].get("method_settings", {}))
        out["config"]["failures"] += doc["config"].get("failures", [])
    out["config"]["command"] = " & ".join(f"`{d['config']['command']}`" for d in docs)
    out["config"]["wall_seconds"] = max(d["config"]["wall_seconds"] for d in docs)
    out["config"]["parallel"] = len(docs)
    return out


def render(results: dict, tag: str) -> tuple[list[str], dict]:
    """The RESULTS.md block of ``results`` (and the plots, written to benchmarks/plots/)."""
    config = results["config"]
    bench = config["benchmark"]
    command, wall = config["command"], config["wall_seconds"]
    command = command if command.startswith("`") else f"`{command}`"
    parallel = f"{config['parallel']} processes in parallel, " if config.get("parallel") else ""
    lines = [
        f"### Language-model unlearning, fictitious authors, {config['model']}",
        "",
        f"{command} ({wall / 60:.1f} min wall, {parallel}on {platform.machine()} with {torch.get_num_threads()} torch threads; "
        f"{bench['authors']} authors x {bench['items'] // max(1, bench['authors'])} QA, {bench['holdout_authors']} "
        f"holdout authors, {bench['utility_items']} world facts; target recipe {config['recipe']}). Every method runs "
        "with its default settings for the model's family. Forget quality: KS p-value of the forget truth ratios "
        "against the retain model's (TOFU); model utility: harmonic mean of Prob, ROUGE-L and truth ratio on "
        f"{config.get('retain_eval_items', RETAIN_EVAL_ITEMS)} retain items and the world facts; privleak: MUSE's `(A_u - A_r) / A_r * 100` with "
        "`A = 1 - AUC` of the Min-40% attack (forget vs holdout), as open-unlearning computes it (0 ideal, an "
        "un-unlearned target near -100, negative = under-unlearned); time / retrain: unlearning seconds over the retain "
        "model's training seconds.",
        "",
    ]
    if config.get("model_family"):
        lines += [f"Method defaults: the `{config['model_family']}` family's (`LMUnlearner.defaults_for`).", ""]
    if config.get("splits_note"):
        lines += [f"Splits: {config['splits_note']}.", ""]
    splits = config["scenarios"]
    met_any = {}
    for split in splits:
        board = lm_leaderboard(results, split)
        v = verdicts(board)
        met_any[split] = v["meets"]
        png = tofu_chart(board, title=f"{config['model']} / {split}")
        if png is not None:
            atomic_write_bytes(PLOTS / f"lm_authors_{tag}_{split}.png", png)
        lines += [f"**{split}**", "", *table(board), ""]
        lines.append(
            f"- Target (forget quality >= {TARGET_FQ} at utility >= {TARGET_UTILITY}x the target's): "
            + (f"met by {', '.join(v['meets'])}." if v["meets"] else "not met by any method.")
        )
        lines.append(
            "- Collapse (utility 0 or below half the target's): " + (", ".join(v["collapses"]) or "none") + "."
        )
        lines.append(
            "- Fail to forget (forget Prob >= 0.9x the target's, or forget quality not above the target's where "
            "the target's is < 0.1): " + (", ".join(v["fails"]) or "none") + "."
        )
        own = next((e.get("forget_quality") or 0.0 for e in board if e["method"] == ORIGINAL), 0.0)
        if own >= TARGET_FQ:
            n_items = round(int(split[-2:]) / 100 * bench["authors"]) * (bench["items"] // max(1, bench["authors"]))
            lines.append(
                f"- The target itself has forget quality {_fmt_p(own)} here: with {n_items} forget items the KS test "
                "cannot separate it from the retain model, so this split's forget quality says little; forget Prob "
                "and ROUGE show what was forgotten."
            )
        best = min((e for e in board if e["role"] == "unlearner" and e.get("privleak") is not None),
                   key=lambda e: abs(e["privleak"]), default=None)
        if best is not None:
            lines.append(
                f"- Privleak closest to 0: {best['method']} ({best['privleak']:+.1f}%; target "
                f"{next((e.get('privleak') or 0.0 for e in board if e['method'] == ORIGINAL), 0.0):+.1f}%): negative "
                "means the forget authors still look more like training members than they do to the retain model."
            )
        lines.append(f"- Plot: `benchmarks/plots/lm_authors_{tag}_{split}.png`.")
        lines.append("")
    failures = config.get("failures") or []
    if failures:
        lines.append("Runs that failed: " + "; ".join(f"{f['scenario']}/{f['method']}: {f['error']}" for f in failures))
    if config.get("method_settings"):
        lines += ["", "Settings used: " + "; ".join(
            f"{m}: " + ", ".join(f"{k}={v}" for k, v in sorted(s.items()) if k in ("lr", "epochs", "alpha", "beta", "gamma",
                                 "steering_coeff", "scale", "strength", "reinforce_lr"))
            for m, s in config["method_settings"].items()) + "."]
    return lines, met_any


if __name__ == "__main__":
    main()
