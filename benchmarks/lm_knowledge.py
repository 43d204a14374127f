"""Unlearning real knowledge on SmolLM2-135M-Instruct: the knowledge suite, its scope table and attacks.

Runs :func:`obliviate.bench.knowledge.run_knowledge` (forget the chemical elements, keep geography and
the compound neighbours) with every method of ``KNOWLEDGE_METHODS`` and every attack, then checks the
issue's targets for the best method: forget-domain MCQ accuracy within 5 points of chance (25%), retain accuracy >= 0.95x the original's, perplexity <= 1.1x; and says how much each
attack brings back. Writes the results document and report to ``--out`` (default
runs/knowledge-smollm2), the plot to benchmarks/plots/lm_knowledge_smollm2.png, and the markdown
block to ``--md`` (default /tmp/results_lm_knowledge.md; the RESULTS.md owner pastes it).

    .venv/bin/python benchmarks/lm_knowledge.py                       # the CPU-sized default
    .venv/bin/python benchmarks/lm_knowledge.py --methods rmu,npo --set rmu.lr=1e-3
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from obliviate.bench.knowledge import ATTACKS, CHANCE, KNOWLEDGE_METHODS, KnowledgeConfig, run_knowledge
from obliviate.bench.results import write_results
from obliviate.report import write_report
from obliviate.report.knowledge import ATTACK_COLUMNS, SCOPE_COLUMNS, knowledge_board, knowledge_chart
from obliviate.storage import atomic_write_bytes

PLOTS = Path(__file__).resolve().parent / "plots"


def _cell(value, kind: str = "%") -> str:
    if value is None:
        return "-"
    return {"%": f"{100 * value:.0f}", "x": f"{value:.2f}x", "f": f"{value:.1f}"}[kind]


def _parse_set(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = {"true": True, "false": False}.get(raw.lower(), raw)
        out[key] = value
    return out


def verdict(board: list[dict]) -> tuple[dict | None, list[str]]:
    """The best method meeting the targets (or the closest), and the sentences that say so."""
    original = next(e for e in board if e["role"] == "original")
    lines = []
    candidates = [e for e in board if e["role"] == "unlearner" and e.get("forget_mcq_accuracy") is not None]
    for e in candidates:
        e["_meets"] = (
            abs(e["forget_mcq_accuracy"] - CHANCE) <= 0.05
            and (e.get("retain_vs_original") or 0) >= 0.95
            and (e.get("perplexity_vs_original") or 9) <= 1.1
        )
    meeting = [e for e in candidates if e["_meets"]]
    pool = meeting or [e for e in candidates if not e.get("collapsed")] or candidates
    if not pool:
        return None, ["no method produced a model"]
    # closest to the target: forget near chance first, then retain kept
    best = min(
        pool,
        key=lambda e: (
            abs(e["forget_mcq_accuracy"] - CHANCE) + max(0.0, 0.95 - (e.get("retain_vs_original") or 0)),
            e["method"],
        ),
    )
    state = "meets" if best in meeting else "does not meet"
    lines.append(
        f"best method **{best['method']}** {state} the target: forget MCQ {_cell(best['forget_mcq_accuracy'])}% "
        f"(original {_cell(original.get('forget_mcq_accuracy'))}%, chance 25%), retain {_cell(best.get('retain_vs_original'), 'x')} "
        f"the original's, perplexity {_cell(best.get('perplexity_vs_original'), 'x')}"
    )
    own = best.get("heldout_forget_accuracy")
    for header, key in ATTACK_COLUMNS[1:]:
        if best.get(key) is not None and own is not None:
            lines.append(
                f"{header}: held-out forget accuracy {_cell(own)}% -> {_cell(best[key])}% "
                f"({100 * (best[key] - own):+.0f} points; the original reaches {_cell(original.get(key))}%)"
            )
    flagged = [e["method"] for e in board if e.get("collapsed")]
    if flagged:
        lines.append(f"collapsed (retain accuracy within 10 points of chance): {', '.join(flagged)}")
    return best, lines


def markdown(results: dict, board: list[dict], lines: list[str], command: str, seconds: float, search: str = "") -> str:
    info = results["config"]["knowledge"]
    ic = info.get("attacks", {}).get("original", {}).get("in_context")
    if ic:
        lines = [
            *lines,
            f"in-context layout: the {ic.get('shots')} shots are earlier chat turns (user/assistant pairs); the original "
            f"scores {_cell(ic['before'])}% without them and {_cell(ic['after'])}% with them",
        ]
    head = "| method | " + " | ".join(h for h, _, _ in SCOPE_COLUMNS) + " |"
    rule = "|---" * (len(SCOPE_COLUMNS) + 1) + "|"
    rows = [head, rule]
    for e in board:
        name = e["method"] + (" (collapsed)" if e.get("collapsed") else "")
        rows.append(f"| {name} | " + " | ".join(_cell(e.get(k), kind) for _, k, kind in SCOPE_COLUMNS) + " |")
    ahead = "| method | " + " | ".join(h for h, _ in ATTACK_COLUMNS) + " |"
    arows = [ahead, "|---" * (len(ATTACK_COLUMNS) + 1) + "|"]
    for e in board:
        arows.append(f"| {e['method']} | " + " | ".join(_cell(e.get(k)) for _, k in ATTACK_COLUMNS) + " |")
    filt = "; ".join(
        f"{k} {v['kept']}/{v['candidates']} kept (original {100 * v['accuracy_before_filter']:.0f}% before)"
        for k, v in info["filter"].items()
    )
    notes = "\n".join(f"- {n}" for n in info["notes"])
    failures = "\n".join(f"- {f['method']}: {f['error']}" for f in results["config"]["failures"]) or "- none"
    return "\n".join(
        [
            f"### lm-knowledge-smollm2: unlearning the chemical elements on {results['config']['model']}",
            "",
            f"Command: `{command}` ({seconds / 60:.1f} min wall on {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
            "CPU shared with other jobs while it ran: the load average was far above 2).",
            "",
            f"Questions kept by the original-model filter: {filt}.",
            f"Corpus: {info.get('corpus')}; perplexity on {results['config']['config']['perplexity_texts']} paragraphs of {info['perplexity_source']}.",
            f"Method settings: {results['config']['settings']}.",
            "",
            "Scope (accuracy %, 4 choices: chance 25):",
            "",
            *rows,
            "",
            "Attacks (held-out forget MCQ accuracy %, " + info.get("attack_setup", {}).get("scored_on", "") + "):",
            "",
            *arows,
            "",
            *[f"- {line}" for line in lines],
            "",
            "Question sets and confidence:",
            notes or "- every set resolves the margin",
            "",
            "Failures:",
            failures,
            "",
            *([search, ""] if search else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default=",".join(KNOWLEDGE_METHODS))
    parser.add_argument("--set", action="append", default=[], help="method.key=value")
    parser.add_argument("--no-attacks", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/knowledge-smollm2"))
    parser.add_argument("--md", type=Path, default=Path("/tmp/results_lm_knowledge.md"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=None, help="corpus texts per subject (default: the suite's)")
    parser.add_argument("--split", default="test", help="the questions scored: test (default), validation or all")
    parser.add_argument("--search-md", type=Path, default=None, help="a lm_knowledge_search.py search.md to include")
    parser.add_argument(
        "--subjects", default="", help="subjects per domain, e.g. elements=32,geography=20,compounds=20 (default: the suite's)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    limits = {k: int(v) for k, v in (pair.split("=") for pair in args.subjects.split(",") if pair)}
    start = time.perf_counter()
    results = run_knowledge(
        args.model,
        methods=[m for m in args.methods.split(",") if m],
        settings=_parse_set(args.set),
        config=KnowledgeConfig(
            **({"limits": limits} if limits else {}),
            **({"texts_per_subject": args.texts} if args.texts else {}),
            split=args.split,
        ),
        attacks=() if args.no_attacks else ATTACKS,
    )
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(results, args.out)
    write_report(results, args.out)
    scenario = results["config"]["scenarios"][0]
    board = knowledge_board(results, scenario)
    png = knowledge_chart(board, title=f"knowledge / {scenario} ({results['config']['model']})")
    if png:
        PLOTS.mkdir(exist_ok=True)
        atomic_write_bytes(PLOTS / "lm_knowledge_smollm2.png", png)
    _, lines = verdict(board)
    import sys

    command = "python benchmarks/lm_knowledge.py " + " ".join(sys.argv[1:])
    search = args.search_md.read_text() if args.search_md else ""
    text = markdown(results, board, lines, command.strip(), seconds, search)
    atomic_write_bytes(args.md, text.encode())
    print(text)


if __name__ == "__main__":
    main()
