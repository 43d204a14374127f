"""Scope expansion on delete: precision and recall on the planted corpus (obliviate.retrieval.corpus).

For each seed: a store of the planted corpus (all-MiniLM-L6-v2 vectors), then for every target a delete request
naming it alone, expanded with :func:`obliviate.retrieval.expand.expand`. A returned id is a true positive when it
is one of that target's planted copies (near-duplicate, quotation, paraphrase), a false positive otherwise (the
hard negatives: the same template about someone else, other facts of the same subject, other targets' copies).
Micro-averaged over the targets, and recall per kind.

Thresholds: chosen on the calibration seed (the first of --seeds) by a grid over the scores of every candidate
examined (the highest recall at precision >= 0.9, then the highest precision), and reported on the other seeds,
which the choice never saw. In two stages: first the four thresholds of the near-duplicate, quotation and
cosine-paraphrase signals (as before the entity rule existed), then, with those fixed, the entity-anchored
paraphrase rule's three (``entity_overlap``, ``entity_anchors``, ``entity_cosine``). Ties in the second stage go
to the largest margin on the calibration seed: the cosine floor nearest the middle of the gap between the highest
cosine of a non-copy that passes the rule's anchor test (0 when none does) and the lowest cosine of a planted
paraphrase that passes it; the anchor count one above the most anchors any non-copy at that overlap holds; the
overlap nearest 0.8. (The last session's miss came from a threshold at the very edge of the calibration seed's
paraphrases: cosine 0.78 against a lowest paraphrase at 0.79.)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/retrieval_expand.py --seeds 0 1 2 --out /tmp/retrieval_expand.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from dataclasses import asdict, replace

import torch

from obliviate.retrieval import DocumentStore
from obliviate.retrieval.corpus import KINDS, planted_corpus
from obliviate.retrieval.expand import ExpansionPolicy, anchors_of, expand

PERMISSIVE = ExpansionPolicy(jaccard=0.3, containment=0.0, cosine=0.0, anchor_overlap=0.0)
ENTITY_OFF = {"entity_overlap": 1.0, "entity_anchors": 10**6, "entity_cosine": 1.0}


def examine(seed: int, embedder: str, people: int, facts: int, background: int):
    """Every candidate examined for every target, with its truth label and scores."""
    corpus = planted_corpus(seed=seed, people=people, facts=facts, background=background)
    folder = tempfile.mkdtemp(prefix="obliviate-expand-")
    store = DocumentStore(folder, embedder=embedder, create=True)
    t0 = time.perf_counter()
    ids = store.add(corpus.texts, owners=corpus.owners)
    embed_s = time.perf_counter() - t0
    rows = []
    t0 = time.perf_counter()
    for target in corpus.targets:
        doc_id = ids[corpus.target_position[target.key]]
        truth = {ids[p]: kind for kind, positions in corpus.copies[target.key].items() for p in positions}
        found = expand(store, [doc_id], policy=PERMISSIVE).candidates
        seen = {c.id for c in found}
        named = bool(anchors_of(target.text))
        for c in found:
            rows.append({"target": target.key, "id": c.id, "truth": truth.get(c.id), "jaccard": c.jaccard,
                         "containment": c.containment, "cosine": c.cosine, "anchor_overlap": c.anchor_overlap,
                         "anchors_matched": c.anchors_matched, "named": named})
        for missed, kind in truth.items():  # a copy never examined is a miss at any threshold
            if missed not in seen:
                rows.append({"target": target.key, "id": missed, "truth": kind, "jaccard": 0.0, "containment": 0.0,
                             "cosine": -1.0, "anchor_overlap": 0.0, "anchors_matched": 0, "named": named})
    expand_s = (time.perf_counter() - t0) / max(1, len(corpus.targets))
    store.close()
    return corpus, rows, {"documents": len(ids), "embed_seconds": embed_s, "expand_seconds_per_request": expand_s}


def judge(policy: ExpansionPolicy, row: dict) -> str | None:
    if row["jaccard"] >= policy.jaccard:
        return "near-duplicate"
    if row["containment"] >= policy.containment:
        return "quotation"
    if row["cosine"] >= policy.cosine and row["anchor_overlap"] >= policy.anchor_overlap:
        return "paraphrase"
    if (row["named"] and row["anchor_overlap"] >= policy.entity_overlap and row["anchors_matched"] >= policy.entity_anchors
            and row["cosine"] >= policy.entity_cosine):
        return "paraphrase"
    return None


def score(policy: ExpansionPolicy, rows: list[dict], n_copies: int) -> dict:
    tp = fp = 0
    per_kind = {k: [0, 0] for k in KINDS}
    for row in rows:
        accepted = judge(policy, row) is not None
        if row["truth"] is not None:
            per_kind[row["truth"]][1] += 1
            per_kind[row["truth"]][0] += accepted
            tp += accepted
        else:
            fp += accepted
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / n_copies if n_copies else 1.0,
        "true_positives": tp,
        "false_positives": fp,
        "copies": n_copies,
        "recall_by_kind": {k: (a / b if b else None) for k, (a, b) in per_kind.items()},
    }


def calibrate(rows: list[dict], n_copies: int) -> ExpansionPolicy:
    grid = itertools.product((0.4, 0.5, 0.6), (0.7, 0.8, 0.9), (0.6, 0.65, 0.7, 0.75, 0.78, 0.8, 0.85),
                             (0.5, 0.6, 0.75, 1.0))
    best, key = None, None
    for j, c, cos, a in grid:  # stage 1: the entity rule off
        policy = replace(ExpansionPolicy(), jaccard=j, containment=c, cosine=cos, anchor_overlap=a, **ENTITY_OFF)
        s = score(policy, rows, n_copies)
        k = (s["precision"] >= 0.9, s["recall"], s["precision"], -abs(cos - 0.7))
        if key is None or k > key:
            best, key = policy, k
    stage1, key = best, None
    for overlap, count, floor in itertools.product((0.6, 0.8, 1.0), (2, 3, 4, 5), (0.3, 0.4, 0.5, 0.6, 0.7)):
        policy = replace(stage1, entity_overlap=overlap, entity_anchors=count, entity_cosine=floor)
        s = score(policy, rows, n_copies)
        k = (s["precision"] >= 0.9, s["recall"], s["precision"], *margins(rows, overlap, count, floor))
        if key is None or k > key:
            best, key = policy, k
    return best


def margins(rows: list[dict], overlap: float, count: int, floor: float) -> tuple[float, float, float]:
    """The second stage's tie-breaks (larger is better; see the module docstring)."""
    anchored = [r for r in rows if r["named"] and r["anchor_overlap"] >= overlap and r["anchors_matched"] >= count]
    low = max((r["cosine"] for r in anchored if r["truth"] is None), default=0.0)
    high = min((r["cosine"] for r in anchored if r["truth"] == "paraphrase"), default=1.0)
    most = max((r["anchors_matched"] for r in rows if r["truth"] is None and r["anchor_overlap"] >= overlap), default=0)
    return -abs(floor - (low + high) / 2), -abs(count - (most + 1)), -abs(overlap - 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--background", type=int, default=300)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    results = {"args": vars(args), "seeds": {}}
    policy = None
    for n, seed in enumerate(args.seeds):
        corpus, rows, timing = examine(seed, args.embedder, args.people, args.facts, args.background)
        n_copies = sum(len(p) for kinds in corpus.copies.values() for p in kinds.values())
        if n == 0:
            policy = calibrate(rows, n_copies)
            results["policy"] = asdict(policy)
            results["default_policy"] = asdict(ExpansionPolicy())
        results["seeds"][seed] = {
            "role": "calibration" if n == 0 else "test",
            "targets": len(corpus.targets),
            **timing,
            "chosen_policy": score(policy, rows, n_copies),
            "default_policy": score(ExpansionPolicy(), rows, n_copies),
        }
        print(json.dumps({seed: results["seeds"][seed]}, indent=1))
    results["seconds"] = time.perf_counter() - started
    print("policy chosen on seed", args.seeds[0], json.dumps(results["policy"]))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
