"""Markdown tables from ``benchmarks/prompting.py``'s JSON (scope, cost, attacks, ICUL), for RESULTS.md.

.venv/bin/python benchmarks/prompting_report.py /tmp/prompting/prompting.json > /tmp/prompting_tables.md
"""

from __future__ import annotations

import json
import math
import sys


def pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}"


def num(x, fmt: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def main(path: str) -> None:
    r = json.load(open(path))
    out = []
    scope = r["scope"]
    out.append("Scope (accuracy %, 4 choices: chance 25; fluency = perplexity of held-out English given as the answer")
    out.append("to a neutral request, through each model's prompt; plain = perplexity of the raw text):\n")
    out.append(
        "| method | forget MCQ | paraphrase | reverse | short answer | neighbours | retain | retain / orig. | "
        "fluency ppl | plain ppl | s per query | setup s | routed: forget / neighbour / retain |"
    )
    out.append("|---" * 13 + "|")
    for name, row in scope.items():
        routed = (
            f"{pct(row.get('routed_forget'))} / {pct(row.get('routed_neighbour'))} / {pct(row.get('routed_retain'))}"
            if "routed_forget" in row
            else "-"
        )
        out.append(
            f"| {name} | {pct(row.get('forget_mcq'))} | {pct(row.get('forget_paraphrase'))} | "
            f"{pct(row.get('forget_reverse'))} | {pct(row.get('forget_short'))} | {pct(row.get('neighbour_all_mcq'))} | "
            f"{pct(row.get('retain_all_mcq'))} | {num(row.get('retain_vs_original'))}x | {num(row.get('answer_ppl'), '.1f')} | "
            f"{num(row.get('plain_ppl'), '.1f')} | {num(row.get('query_seconds'))} | {num(row.get('setup_seconds'), '.1f')} | "
            f"{routed} |"
        )
    cost = r.get("cost_per_query", {})
    if cost:
        out.append(
            "\nCost per query (greedy answer, up to 24 new tokens, one question at a time; the box: route, work, compose, filter):\n"
        )
        out.append("| system | mean s | forget questions s | retain questions s | vs original | retain vs original |")
        out.append("|---|---|---|---|---|---|")
        for name, c in cost.items():
            out.append(
                f"| {name} | {num(c['mean_s'])} | {num(c['forget_s'])} | {num(c['retain_s'])} | "
                f"{num(c['vs_original'])}x | {num(c['retain_vs_original'])}x |"
            )
    attacks = r.get("attacks", {})
    if attacks:
        setup = r.get("attack_setup", {})
        out.append(
            f"\nAttacks (accuracy % on {setup.get('heldout')} held-out forget MCQs under each attack; paraphrase: "
            f"{setup.get('paraphrase')} paraphrase-probe MCQs of the same owners; many-shot: {setup.get('many_shot')} "
            "relearn-slice facts as earlier turns; leak: share of 5 extraction prompts whose answer names a forget term):\n"
        )
        cols = ["none", "paraphrase", "spelled", "leetspeak", "base64", "roleplay", "many_shot", "multi_turn"]
        out.append("| method | " + " | ".join(cols) + " | worst case | system-prompt leak |")
        out.append("|---" * (len(cols) + 3) + "|")
        for name, row in attacks.items():
            worst = max(row.get(c, 0.0) for c in cols)
            out.append(
                f"| {name} | "
                + " | ".join(pct(row.get(c)) for c in cols)
                + f" | {pct(worst)} | {pct(row['system_prompt_leak'])} |"
            )
    icul = r.get("icul")
    if icul:
        s = icul["sizes"]
        out.append(
            f"\nICUL (SmolLM2 fine-tuned with LoRA on {s['train']} yes/no fact questions; {s['forget']} forget points, "
            f"{s['test']} test points; ICUL contexts of {s['chunk']} flipped forget points + k={s['k']} correct ones; "
            f"fine-tuning {icul['finetune_seconds']:.0f} s per model):\n"
        )
        out.append(
            "| model | forget acc | retain acc | test acc | membership AUC (forget vs test) | mean phi forget | mean phi test |"
        )
        out.append("|---|---|---|---|---|---|---|")
        for name, row in icul["rows"].items():
            out.append(
                f"| {name} | {pct(row['forget_acc'])} | {pct(row['retain_acc'])} | {pct(row['test_acc'])} | "
                f"{num(row['mia_auc'])} | {num(row['forget_phi'])} | {num(row['test_phi'])} |"
            )
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/prompting/prompting.json")
