"""Choose the NeurIPS 2023 leaders' hyper-parameters on a validation protocol the scoreboard never sees.

For each method a small grid (a few dozen configurations) runs stacked (``unlearn_many``) under the
challenge protocol (ONE original, N unlearning seeds, N retrained models) and is scored with the
challenge's final score (``nips_forget_score`` x RA ratio x TA ratio, ``obliviate.evaluation.nips``).

**Robust protocol** (``--draws D``, default 3; used from ``--grid robust`` on): every configuration is
scored on D independent *draws*, each its own forget set, its own original and its own seeds, and
the configuration's validation score is the MEAN of its D final scores (the spread, min and max
over draws are reported beside it). Draw ``d`` (0-based) uses

- the forget set: a random 10% of the digits training set drawn with seed ``--forget-seed + d``
  (default 1, 2, 3; the scoreboard's random-10pct scenario draws with seed 0);
- the original: trained with seed ``--original-seed + d`` (default 2,000,000 + d; the
  scoreboard's is 1,000,000);
- retrained models and unlearning runs: seeds ``--seed-base + 1000 d`` .. ``+ N - 1`` (default
  10,000 + 1000 d; the scoreboard's are 0 .. 511).

With ``--draws 1`` this is the earlier one-draw protocol (forget seed 1, original 2,000,000, seeds
10,000..), which chose the defaults recorded in RESULTS.md before the robust protocol existed.
What is shared with the scoreboard: the digits train/test split (the same 1,347 training examples,
from which every forget set is drawn, and the same 450 test examples, read only by the TA ratio),
the MLP recipe.

Selection rule (fixed before looking at any robust-protocol result): among configurations whose
gradient work (``examples_seen`` per model: example-passes through backward) is at most
``--budget`` (0.10) of retraining's (``epochs x |D_r|``; the largest over draws), the one with the
highest MEAN final score over the draws; ties (equal to 4 decimals) go to the smaller work. The
budget is in a unit that does not depend on how busy the machine is; wall-clock ratios (each
draw's unlearning seconds over its retraining seconds, averaged) are reported too.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_search.py --models 64 --grid robust [--methods a,b]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

import obliviate as ob
from obliviate.bench import get_suite
from obliviate.evaluation import logit_scaled_confidence
from obliviate.evaluation.nips import nips_final_score, nips_forget_score
from obliviate.storage import atomic_write_bytes
from obliviate.training import train_many
from obliviate.training.many import ModelStack
from obliviate.unlearning import unlearn_many

GRIDS: dict[str, dict[str, list]] = {
    "uniform_contrast": {
        "epochs": [1, 2, 3],
        "retain_lr": [0.01, 0.05],
        "forget_lr": [3e-4, 3e-3],
        "batch_size": [64, 256],
    },
    "snip_reinit": {"init_rate": [0.3, 0.6, 0.9], "lr": [0.01, 0.05, 0.1], "epochs": [2, 3], "slow": [0.1, 1.0]},
    "noise_finetune": {"std": [0.3, 0.6, 1.0], "layers": [1, 2, 3], "lr": [0.01, 0.05], "epochs": [2, 3]},
    "prune_reinit": {"amount": [0.8, 0.9, 0.95, 0.99], "lr": [0.01, 0.05, 0.1], "epochs": [2.0, 3.0]},
    "reset_distill": {
        "reset": [0.3, 0.6, 1.0],
        "alpha": [0.5, 0.9],
        "temperature": [1.0, 4.0],
        "lr": [0.05, 0.1, 0.2],
        "epochs": [3],
    },
}
#: Round 2: where round 1's best sat on an edge of its grid, a narrower grid past that edge (same protocol).
REFINE: dict[str, dict[str, list]] = {
    "uniform_contrast": {
        "epochs": [1],
        "retain_lr": [0.05, 0.1, 0.2],
        "forget_lr": [3e-3, 1e-2, 3e-2],
        "batch_size": [32, 64],
    },
    "snip_reinit": {"init_rate": [0.1, 0.2, 0.3], "lr": [0.1, 0.2, 0.3], "epochs": [2], "slow": [1.0]},
    "noise_finetune": {"std": [0.05, 0.1, 0.2, 0.3], "layers": [1], "lr": [0.05, 0.1, 0.2], "epochs": [3]},
    "prune_reinit": {"amount": [0.5, 0.6, 0.7, 0.8], "lr": [0.02, 0.05], "epochs": [2.0, 3.0]},
}
#: The robust protocol's grids (several draws): around each method's one-draw choice and its neighbours.
ROBUST: dict[str, dict[str, list]] = {
    "uniform_contrast": {
        "epochs": [1],
        "retain_lr": [0.05, 0.1, 0.2],
        "forget_lr": [1e-3, 3e-3, 1e-2],
        "batch_size": [64],
    },
    "snip_reinit": {"init_rate": [0.2, 0.3, 0.6], "lr": [0.05, 0.1], "epochs": [2, 3], "slow": [1.0]},
    "noise_finetune": {"std": [0.05, 0.1, 0.2, 0.3], "layers": [1], "lr": [0.05, 0.1, 0.2], "epochs": [3]},
    "prune_reinit": {"amount": [0.6, 0.7, 0.8, 0.9], "lr": [0.03, 0.05, 0.1], "epochs": [3.0]},
    "reset_distill": {
        "reset": [0.3, 0.6, 0.8],
        "alpha": [0.5, 0.9],
        "temperature": [4.0],
        "lr": [0.05, 0.1],
        "epochs": [3],
    },
}
#: New methods (issue 16 item 2) on the robust protocol; small because a batch-8 run costs ~0.7x retraining's wall time.
ROBUST_NEW: dict[str, dict[str, list]] = {
    "shrink_distill": {"shrink": [0.0, 0.2, 0.4], "alpha": [0.0, 0.2], "batch_size": [8], "lr": [0.03], "epochs": [3]},
}
ROBUST.update(ROBUST_NEW)
#: Robust round 2: shrink_distill's best (shrink 0.4, alpha 0) sat on the grid's edge; past it (same protocol).
ROBUST_REFINE: dict[str, dict[str, list]] = {
    "shrink_distill": {"shrink": [0.5, 0.6, 0.8], "alpha": [0.0], "batch_size": [8], "lr": [0.03], "epochs": [3]},
}
#: ``--grid`` names: ``round1`` and ``round2`` were run with ``--draws 1`` (the one-draw protocol).
ALL_GRIDS = {"round1": GRIDS, "round2": REFINE, "robust": ROBUST, "robust2": ROBUST_REFINE}


def configurations(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def score(stack: ModelStack, retrained: ModelStack, sets: dict) -> dict[str, float]:
    """The challenge's forget score and final score of ``stack`` against ``retrained`` (and the accuracies)."""

    def conf_acc(s: ModelStack) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        out, acc = [], {}
        for key, data in sets.items():
            X, y = data.tensors
            logits = s.logits(X).numpy()
            acc[key] = (logits.argmax(-1) == y.numpy()).mean(axis=1)
            if key == "forget":
                out = np.stack([logit_scaled_confidence(z, y.numpy()) for z in logits])
        return out, acc

    cu, au = conf_acc(stack)
    cr, ar = conf_acc(retrained)
    f = nips_forget_score(cu, cr)
    final = nips_final_score(f, au["retain"], ar["retain"], au["test"], ar["test"])
    return {
        "forget_score": f,
        "final": final,
        "retain_acc": float(au["retain"].mean()),
        "test_acc": float(au["test"].mean()),
        "forget_acc": float(au["forget"].mean()),
    }


def prepare_draw(suite, train, test, *, forget_seed: int, original_seed: int, seeds: list[int]) -> dict:
    """One validation draw: its forget request, retrained stack, original (copied per seed) and references."""
    recipe = suite.recipe
    request = ob.ForgetRequest(train.sample_ids(0.1, seed=forget_seed))
    forget, retain = request.split(train)
    sets = {"forget": forget, "retain": retain, "test": test}
    start = time.perf_counter()
    retrained = train_many(recipe, retain, seeds)
    retrain_seconds = time.perf_counter() - start
    original = ob.train(recipe.with_seed(original_seed), train)
    originals = ModelStack.from_models([original] * len(seeds), seeds=seeds, recipe=recipe.with_seed(0))
    half = len(seeds) // 2
    ref = score(
        ModelStack.from_models([retrained.model(i) for i in range(half)], seeds=seeds[:half]),
        ModelStack.from_models([retrained.model(i) for i in range(half, 2 * half)], seeds=seeds[half:]),
        sets,
    )
    return {
        "forget_seed": forget_seed,
        "original_seed": original_seed,
        "seeds": [seeds[0], seeds[-1]],
        "request": request,
        "sets": sets,
        "retrained": retrained,
        "originals": originals,
        "retrain_seconds": retrain_seconds,
        "retrain_examples": recipe.epochs * len(retain),
        "split_half_reference": ref,
        "untouched_original": score(originals, retrained, sets),
    }


def select(rows: list[dict], method: str, budget: float) -> dict | None:
    """The selection rule of the module docstring: the highest mean final score within the work budget
    (ties to 4 decimals: the smaller work)."""
    mine = [r for r in rows if r["method"] == method and r["work_ratio"] <= budget]
    return max(mine, key=lambda r: (round(r["final"], 4), -r["work_ratio"])) if mine else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--methods", default=None, help="comma-separated (default: every method of the grid)")
    parser.add_argument("--draws", type=int, default=3, help="validation draws (forget set, original, seeds)")
    parser.add_argument("--forget-seed", type=int, default=1)
    parser.add_argument("--original-seed", type=int, default=2_000_000)
    parser.add_argument("--seed-base", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=0.10)
    parser.add_argument("--grid", default="robust", choices=sorted(ALL_GRIDS), help="which grid (see ALL_GRIDS)")
    parser.add_argument("--out", type=Path, default=Path("runs/nips_search"))
    args = parser.parse_args()
    if args.draws < 1 or args.models < 2:
        raise SystemExit("--draws must be >= 1 and --models >= 2")
    torch.set_num_threads(1)
    grids = ALL_GRIDS[args.grid]
    methods = args.methods.split(",") if args.methods else list(grids)
    unknown = [m for m in methods if m not in grids]
    if unknown:
        raise SystemExit(f"no {args.grid!r} grid for {', '.join(unknown)}; grids there: {', '.join(grids)}")
    suite = get_suite("digits")
    train, test = suite.load()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    draws = []
    for d in range(args.draws):
        base = args.seed_base + 1000 * d
        draws.append(
            prepare_draw(
                suite,
                train,
                test,
                forget_seed=args.forget_seed + d,
                original_seed=args.original_seed + d,
                seeds=list(range(base, base + args.models)),
            )
        )
        print(
            f"draw {d}: forget seed {args.forget_seed + d}, original seed {args.original_seed + d}: retrain "
            f"{draws[-1]['retrain_seconds']:.1f} s for {args.models} models; split-half reference "
            f"{draws[-1]['split_half_reference']['final']:.4f}; untouched original "
            f"{draws[-1]['untouched_original']['final']:.4f}"
        )

    rows = []
    todo = [(m, c) for m in methods for c in configurations(grids[m])]
    with Progress() as progress:
        bar = progress.add_task("search", total=len(todo) * len(draws))
        for method, config in todo:
            per_draw = []
            for draw in draws:
                t0 = time.perf_counter()
                result = unlearn_many(draw["originals"], draw["request"], train, method=method, settings=config)
                seconds = time.perf_counter() - t0
                s = score(result.stack, draw["retrained"], draw["sets"])
                per_draw.append(
                    {
                        **s,
                        "time_ratio": seconds / draw["retrain_seconds"],
                        "work_ratio": result.cost.examples_seen / draw["retrain_examples"],
                    }
                )
                progress.advance(bar)
            finals = np.array([p["final"] for p in per_draw])
            row = {
                "method": method,
                "config": config,
                "final": float(finals.mean()),
                "final_std": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
                "final_min": float(finals.min()),
                "final_max": float(finals.max()),
                "forget_score": float(np.mean([p["forget_score"] for p in per_draw])),
                "retain_acc": float(np.mean([p["retain_acc"] for p in per_draw])),
                "test_acc": float(np.mean([p["test_acc"] for p in per_draw])),
                "forget_acc": float(np.mean([p["forget_acc"] for p in per_draw])),
                "time_ratio": float(np.mean([p["time_ratio"] for p in per_draw])),
                "work_ratio": float(max(p["work_ratio"] for p in per_draw)),
                "per_draw": per_draw,
            }
            rows.append(row)
            progress.console.print(
                f"{method} {config} final={row['final']:.4f} (sd {row['final_std']:.4f}, "
                f"{row['final_min']:.4f}-{row['final_max']:.4f}) F={row['forget_score']:.4f} "
                f"RA={row['retain_acc']:.3f} TA={row['test_acc']:.3f} work={row['work_ratio']:.3f} "
                f"time={row['time_ratio']:.3f}"
            )
    chosen = {m: r for m in methods if (r := select(rows, m, args.budget)) is not None}
    refs = np.array([d["split_half_reference"]["final"] for d in draws])
    doc = {
        "command": "benchmarks/nips_search.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out" and v is not None),
        "models": args.models,
        "budget": args.budget,
        "grid": args.grid,
        "load_at_start": load,
        "draws": [
            {k: v for k, v in d.items() if k not in {"request", "sets", "retrained", "originals"}} for d in draws
        ],
        "split_half_reference_mean": float(refs.mean()),
        "rows": rows,
        "chosen": chosen,
        "wall_seconds": time.perf_counter() - start,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "search.json", json.dumps(doc, indent=1).encode())
    print(f"split-half reference: mean {refs.mean():.4f} over draws ({', '.join(f'{r:.4f}' for r in refs)})")
    for method, r in chosen.items():
        print(
            f"CHOSEN {method} {r['config']} mean final={r['final']:.4f} (sd {r['final_std']:.4f}; "
            f"ref {refs.mean():.4f}) work={r['work_ratio']:.3f} time={r['time_ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
