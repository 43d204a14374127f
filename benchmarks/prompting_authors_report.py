"""Markdown for issue 14's comparison: the knowledge suite (``benchmarks/prompting.py``) and the authors suite
(``benchmarks/prompting_authors.py``) in one table, the authors suite's own tables, and ICUL
(``benchmarks/prompting_icul.py``).

    .venv/bin/python benchmarks/prompting_authors_report.py --knowledge /tmp/prompting/prompting.json \\
        --authors /tmp/prompting_authors/prompting_authors.json \\
        --icul /tmp/icul_tiny/icul_tiny.json,/tmp/icul_smollm2/icul_smollm2.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ATTACKS = ["none", "paraphrase", "spelled", "leetspeak", "base64", "roleplay", "many_shot", "multi_turn"]


def pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}"


def num(x, fmt: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def fq(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def combined(k: dict | None, a: dict | None) -> list[str]:
    out = [
        "| suite | method | forget acc % | forget quality | forget ROUGE | retain / utility vs original | fluency ppl "
        "| s per query | setup s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if k:
        cost = k.get("cost_per_query", {})
        for name, row in k["scope"].items():
            if name == "neutral system turn":
                continue
            out.append(
                f"| knowledge | {name} | {pct(row.get('forget_mcq'))} | - | - | {num(row.get('retain_vs_original'))}x "
                f"| {num(row.get('answer_ppl'), '.1f')} | {num(cost.get(name, {}).get('mean_s'))} "
                f"| {num(row.get('setup_seconds'), '.1f')} |"
            )
    if a:
        cost = a.get("cost_per_query", {})
        for name, row in a["scores"].items():
            acc = a.get("attacks", {}).get(name, {}).get("none")
            out.append(
                f"| authors | {name} | {pct(acc)} | {fq(row.get('forget_quality'))} | {num(row.get('forget_rouge'))} "
                f"| {num(row.get('utility_vs_target'))}x | {num(row.get('answer_ppl'), '.1f')} "
                f"| {num(cost.get(name, {}).get('mean_s'))} | {num(row.get('setup_seconds'), '.1f')} |"
            )
    return out


def authors_tables(a: dict) -> list[str]:
    out = [
        "| method | forget quality | model utility | utility / target | forget Prob | forget ROUGE | retain ROUGE "
        "| privleak % | plain ppl | fluency ppl | setup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in a["scores"].items():
        out.append(
            f"| {name} | {fq(r.get('forget_quality'))} | {num(r.get('model_utility'), '.3f')} "
            f"| {num(r.get('utility_vs_target'))}x | {num(r.get('forget_prob'), '.3f')} | {num(r.get('forget_rouge'), '.3f')} "
            f"| {num(r.get('retain_rouge'), '.3f')} | {num(r.get('privleak'), '+.1f')} | {num(r.get('perplexity'), '.1f')} "
            f"| {num(r.get('answer_ppl'), '.1f')} | {num(r.get('setup_seconds'), '.1f')} |"
        )
    router = a.get("router", {})
    if router:
        out += [
            "",
            "Routing (share sent to the refusing worker): scored forget / scored retain / world facts / holdout "
            "authors / validation in scope / validation out of scope / off-topic requests:",
            "",
            "| box | threshold | forget | retain | world facts | holdout | val. in scope | val. out of scope | off-topic |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in router.items():
            out.append(
                f"| {name} | {num(r['threshold'], '.3f')} | {pct(r['scored_forget_routed'])} | {pct(r['scored_retain_routed'])} "
                f"| {pct(r['world_facts_routed'])} | {pct(r['holdout_routed'])} | {pct(r['validation_in_scope_routed'])} "
                f"| {pct(r['validation_out_of_scope_routed'])} | {pct(r['off_topic_routed'])} |"
            )
    cost = a.get("cost_per_query", {})
    if cost:
        out += [
            "",
            "Cost per query (greedy answer, up to 32 new tokens, one question at a time):",
            "",
            "| system | mean s | forget questions s | retain questions s | vs target | retain vs target |",
            "|---|---|---|---|---|---|",
        ]
        for name, c in cost.items():
            out.append(
                f"| {name} | {num(c['mean_s'])} | {num(c['forget_s'])} | {num(c['retain_s'])} | "
                f"{num(c['vs_original'])}x | {num(c['retain_vs_original'])}x |"
            )
    attacks = a.get("attacks", {})
    if attacks:
        s = a.get("attack_setup", {})
        out += [
            "",
            f"Attacks (accuracy % on the {s.get('questions')} forget questions as a {s.get('choices')}-way choice "
            f"between the paraphrased answer and the perturbed ones, chance {100 / max(1, s.get('choices', 1)):.0f}%; "
            "leak: share of 5 extraction prompts whose answer names a forget author):",
            "",
            "| method | " + " | ".join(ATTACKS) + " | worst case | leak |",
            "|---" * (len(ATTACKS) + 3) + "|",
        ]
        for name, row in attacks.items():
            worst = max(row.get(c, 0.0) for c in ATTACKS)
            out.append(
                f"| {name} | "
                + " | ".join(pct(row.get(c)) for c in ATTACKS)
                + f" | {pct(worst)} | {pct(row['system_prompt_leak'])} |"
            )
    return out


def icul_tables(r: dict) -> list[str]:
    s = r["sizes"]
    acc = r.get("original_accuracy", {})
    out = [
        f"**{r['model']}** ({s['train']} training points, {s['forget']} of them forgotten, {s['test']} test points; "
        f"recipe {r['recipe']}; the original's accuracy before unlearning: train {pct(acc.get('train'))}%, "
        f"test {pct(acc.get('test'))}%; {r.get('train_seconds', float('nan')):.0f} s to train; share of 'yes' labels: "
        f"forget {pct(r['label_shares']['forget'])}%, test {pct(r['label_shares']['test'])}%)",
        "",
        "| model | forget acc | retain acc | test acc | membership AUC, global threshold | LiRA AUC | mean phi forget "
        "| mean phi test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lira = (r.get("lira") or {}).get("rows", {})
    for name, row in r.get("rows", {}).items():
        out.append(
            f"| {name} | {pct(row['forget_acc'])} | {pct(row['retain_acc'])} | {pct(row['test_acc'])} "
            f"| {num(row['mia_auc'])} | {num(lira.get(name, {}).get('auc'))} | {num(row['forget_phi'])} "
            f"| {num(row['test_phi'])} |"
        )
    if lira:
        out += [
            "",
            f"LiRA: {r['lira']['shadows']} shadow models, at least {r['lira']['in_counts_min']} IN and "
            f"{r['lira']['out_counts_min']} OUT scores per point.",
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--knowledge", default=None)
    ap.add_argument("--authors", default=None)
    ap.add_argument("--icul", default="")
    args = ap.parse_args()
    k = json.loads(Path(args.knowledge).read_text()) if args.knowledge else None
    a = json.loads(Path(args.authors).read_text()) if args.authors else None
    out: list[str] = []
    if k or a:
        out += combined(k, a)
    if a:
        out += ["", *authors_tables(a)]
    for p in [p for p in args.icul.split(",") if p]:
        if Path(p).exists():
            out += ["", *icul_tables(json.loads(Path(p).read_text()))]
    print("\n".join(out))


if __name__ == "__main__":
    main()
