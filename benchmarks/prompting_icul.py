"""In-context unlearning on models that learned their task (issue 14, item 1): the paper's evaluation.

Pawelczyk, Neel, Lakkaraju (2023), "In-Context Unlearning" (arXiv 2310.07579), Sec. 5: fine-tune a model on a
classification task, then for each forget point build the ICUL prompt (the point with its label flipped, then
``k = n_ctxt - 1`` correctly labelled training points, then the query: one forget point per prompt as in their
``--batch_sizes 1`` runs, context lengths ``n_ctxt`` in {2, 4, 6} as in their scripts) and compare, against the
model fine-tuned *without* the forget points (the retrained model): the membership AUC of the forget points
against held-out test points (stable logit phi, higher = member; 0.5 = the forget points look like points
never trained on), and forget / retain / test accuracy.

The task: yes/no questions about facts (:func:`obliviate.prompting.icul.yes_no_facts`, from the knowledge
suite's multiple-choice questions: "<question> Is it <choice>? Answer yes or no.", the right choice or a
seeded wrong one with equal chance).

Two models, each checked to have learned its training set before anything is unlearned:

- ``--model tiny``: a tiny GPT (``TINY_BENCH_SIZE``) trained from scratch on the training items until it
  answers them all correctly (it cannot know an unseen fact: test accuracy is its label prior, so the
  membership signal is pure memorisation). Cheap enough for ``--shadows`` LiRA shadow models: each trained on
  a seeded random half of the pool (train + test points), giving every point IN and OUT stable logits, and the
  per-example LiRA score (:func:`obliviate.prompting.icul.lira_scores`) in place of one global threshold.
- ``--model smollm2``: SmolLM2-135M-Instruct fine-tuned with a LoRA recipe far stronger than the suite's
  (``--epochs``, default 12, against the suite's 3), original and retrained alike.

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/prompting_icul.py --model tiny --out /tmp/icul_tiny &
    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/prompting_icul.py --model smollm2 --out /tmp/icul_smollm2 &
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from obliviate.data.knowledge import knowledge_benchmark
from obliviate.lm.training import SMOLLM2_FINETUNE, TINY_BENCH_SIZE, FinetuneRecipe, finetune
from obliviate.prompting.icul import (
    icul_evaluation,
    icul_model,
    label_scores,
    lira_scores,
    membership_auc,
    yes_no_facts,
)
from obliviate.storage import atomic_write_bytes

CONTEXTS = (2, 4, 6)  # the paper's n_ctxt: the flipped forget point + n_ctxt - 1 correct ones


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    ap.add_argument("--out", default="/tmp/icul")
    ap.add_argument("--train", type=int, default=None, help="training points (tiny 160, smollm2 96)")
    ap.add_argument("--forget", type=int, default=None, help="forget points, the first of the training points")
    ap.add_argument("--epochs", type=int, default=None, help="tiny 150 (full training), smollm2 12 (LoRA)")
    ap.add_argument("--shadows", type=int, default=0, help="LiRA shadow models (tiny only; 0: none)")
    ap.add_argument(
        "--ablation", action="store_true", help="also the paper's 'correct' ablation (forget labels not flipped)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tiny = args.model == "tiny"
    n_train = args.train or (160 if tiny else 96)
    n_forget = args.forget or (20 if tiny else 16)
    n_test = n_train // 2
    epochs = args.epochs or (150 if tiny else 12)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict = {
        "command": "benchmarks/prompting_icul.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
    }

    def save() -> None:
        results["seconds_total"] = time.perf_counter() - t0
        results["load_now"] = os.getloadavg()[0]
        atomic_write_bytes(out_dir / f"icul_{args.model}.json", json.dumps(results, indent=1, default=str).encode())

    full = knowledge_benchmark(seed=args.seed, limit={"elements": 118, "geography": 60, "compounds": 40})
    data = yes_no_facts([q for q in full.questions if q.multiple_choice], seed=args.seed)
    rng = np.random.default_rng([args.seed, 14, 1])
    order = rng.permutation(len(data))
    if n_train + n_test > len(data):
        raise SystemExit(f"{n_train} train + {n_test} test points asked for, only {len(data)} questions")
    pool_ids = data.ids[order[: n_train + n_test]]
    train_ids, test_ids = pool_ids[:n_train], pool_ids[n_train:]
    forget_ids = train_ids[:n_forget]
    pairs = {int(it.id): (it.question, it.answer) for it in data}
    forget = [pairs[int(i)] for i in forget_ids]
    retain = [pairs[int(i)] for i in train_ids[n_forget:]]
    test = [pairs[int(i)] for i in test_ids]
    results["sizes"] = {"pool": len(data), "train": n_train, "forget": n_forget, "retain": len(retain), "test": n_test}
    results["label_shares"] = {
        name: float(np.mean([y == "yes" for _, y in part])) for name, part in (("forget", forget), ("test", test))
    }

    if tiny:
        from obliviate.models.lm import tiny_gpt

        texts = [f"Question: {x}\nAnswer: {y}" for x, y in pairs.values()]
        base = tiny_gpt(texts, seed=args.seed, **TINY_BENCH_SIZE)
        recipe = FinetuneRecipe(epochs=epochs, lr=3e-3, batch_size=32, weight_decay=0.0, warmup=0.05, seed=args.seed)
    else:
        from obliviate.models.lm import smollm2

        base = smollm2()
        recipe = dataclasses.replace(SMOLLM2_FINETUNE, epochs=epochs, seed=args.seed)
    results["recipe"] = recipe.to_dict()
    results["model"] = base.name

    def train(ids, seed_offset: int = 0, what: str = "fine-tuning"):
        t = time.perf_counter()
        m = finetune(
            base, data.subset(ids), recipe=dataclasses.replace(recipe, seed=args.seed + seed_offset), description=what
        )
        return m, time.perf_counter() - t

    log(f"{base.name}: training the original on {n_train} points ({recipe.epochs} epochs)")
    original, secs = train(train_ids)
    results["train_seconds"] = secs
    acc = {
        name: float(label_scores(original, part)["correct"].mean())
        for name, part in (("train", [pairs[int(i)] for i in train_ids]), ("test", test))
    }
    results["original_accuracy"] = acc
    log(f"original: train accuracy {acc['train']:.2f}, test {acc['test']:.2f} ({secs:.0f} s)")
    save()
    log("training the retrained model (without the forget points)")
    retrained, _ = train(train_ids[n_forget:])
    models = {"original": original, "retrained": retrained}

    rows: dict[str, dict] = {}
    for n_ctxt in CONTEXTS:
        log(f"ICUL, n_ctxt={n_ctxt}")
        t = time.perf_counter()
        ev = icul_evaluation(
            models,
            forget=forget,
            retain=retain,
            test=test,
            chunk=1,
            k=n_ctxt - 1,
            seed=args.seed,
            retain_pool=retain,
        )
        rows.setdefault("original", ev["original"])
        rows.setdefault("retrained", ev["retrained"])
        rows[f"icul (n_ctxt={n_ctxt})"] = ev["icul(original)"]
        rows[f"icul (n_ctxt={n_ctxt})"]["seconds"] = time.perf_counter() - t
        if args.ablation:
            ab = icul_evaluation(
                {"original": original},
                forget=forget,
                retain=retain,
                test=test,
                chunk=1,
                k=n_ctxt - 1,
                seed=args.seed,
                retain_pool=retain,
                flip=False,
            )
            rows[f"correct-label context (n_ctxt={n_ctxt})"] = ab["icul(original)"]
        results["rows"] = rows
        save()

    if tiny and args.shadows:
        # LiRA: each point IN for exactly half of the shadow models (the assignment of Carlini et al.'s code:
        # per point, a seeded random half of the models), so every point has shadows/2 IN and OUT scores
        if args.shadows < 4 or args.shadows % 2:
            raise SystemExit("--shadows must be an even number >= 4 (every point needs 2 IN and 2 OUT scores)")
        log(f"LiRA: {args.shadows} shadow models")
        pool = [pairs[int(i)] for i in pool_ids]
        index = {int(i): j for j, i in enumerate(pool_ids)}
        srng = np.random.default_rng([args.seed, 14, 2])
        keep = srng.uniform(size=(args.shadows, len(pool))).argsort(axis=0) < args.shadows // 2
        in_phi: list[list[float]] = [[] for _ in pool]
        out_phi: list[list[float]] = [[] for _ in pool]
        for s in range(args.shadows):
            member = keep[s]
            shadow, _ = train(pool_ids[member], seed_offset=100 + s, what=f"shadow {s}")
            phi = label_scores(shadow, pool)["phi"]
            for j in range(len(pool)):
                (in_phi if member[j] else out_phi)[j].append(float(phi[j]))
            log(f"shadow {s} done")
        f_idx = [index[int(i)] for i in forget_ids]
        t_idx = [index[int(i)] for i in test_ids]
        lira: dict[str, dict] = {}
        for name, m in models.items():
            f = lira_scores(label_scores(m, forget)["phi"], [in_phi[j] for j in f_idx], [out_phi[j] for j in f_idx])
            t_ = lira_scores(label_scores(m, test)["phi"], [in_phi[j] for j in t_idx], [out_phi[j] for j in t_idx])
            lira[name] = {"auc": membership_auc(f, t_)}
        for n_ctxt in CONTEXTS:  # ICUL: each forget and test point scored under its own ICUL prompt
            f_scores, t_scores = [], []
            for j, (_i, point) in enumerate(zip(forget_ids, forget)):
                wrapped = icul_model(original, [point], retain, k=n_ctxt - 1, seed=args.seed)
                f_scores.append(float(label_scores(wrapped, [point])["phi"][0]))
                tj = t_idx[j % len(t_idx)]
                t_scores.append((tj, float(label_scores(wrapped, [pool[tj]])["phi"][0])))
            f = lira_scores(f_scores, [in_phi[j] for j in f_idx], [out_phi[j] for j in f_idx])
            t_ = lira_scores(
                [v for _, v in t_scores], [in_phi[j] for j, _ in t_scores], [out_phi[j] for j, _ in t_scores]
            )
            lira[f"icul (n_ctxt={n_ctxt})"] = {"auc": membership_auc(f, t_)}
        results["lira"] = {
            "shadows": args.shadows,
            "rows": lira,
            "in_counts_min": min(len(v) for v in in_phi),
            "out_counts_min": min(len(v) for v in out_phi),
        }
        save()
    save()
    log(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
