"""The NeurIPS 2023 challenge's evaluation of one method, timed, on a CPU: ONE original, N unlearning
runs, N retrained models, the metric (Triantafillou et al. 2024, Sec. 3; ``obliviate.bench.challenge``).

For the digits MLP (64-64-10, 30 epochs, batch 64, the block's recipe since the first run) and the
small CNN, in one process:

- the phases: the original (``ob.train``, seed 1,000,000 as ``bench.runner.ORIGINAL_SEED``), the N
  retrained models (``train_many`` on the retain set, seeds 0..N-1), the N unlearning runs
  (``unlearn_many`` on N copies of the one original, seeds 0..N-1) and the metric (every model's
  logits, the per-example epsilons, the forget score and the final score); wall AND CPU seconds
  (``time.process_time``: on a shared machine the wall time is the other jobs' too);
- FLOPs: forward + backward of one batch counted by ``torch.utils.flop_counter.FlopCounterMode``,
  scaled to every example, epoch and model trained (the original and the N retrained);
- references measured in the same process and with the same threads: fp32 ``torch.mm`` of 512 x 512
  and 2048 x 2048 matrices, and (MLP) ``torch.bmm`` over the stack on exactly the per-model products
  of a training step (forward, weight gradient, input gradient of each layer, at the chunk size the
  training uses); the floor is training FLOPs / the best mm throughput;
- a plain loop (``ob.train`` then ``ob.unlearn``, one model at a time) on ``--loop-models`` seeds,
  scaled to N (the one original is shared by both sides).

The CNN is measured on ``--cnn-models`` seeds and scaled to N (a 512-CNN run takes hours here).
``--json`` writes the numbers; ``--before JSON`` adds a previous run's numbers (e.g. the code before
a change, run with ``PYTHONPATH=<old src>``) to the block as the "before" rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_scale.py --json /tmp/after.json --results-md /tmp/r.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import obliviate as ob
from obliviate.bench import get_suite
from obliviate.evaluation import logit_scaled_confidence, nips_epsilons, nips_final_score, nips_points
from obliviate.models import build_model
from obliviate.training import ModelStack, train_many
from obliviate.unlearning import unlearn_many

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import write_block  # noqa: E402

ORIGINAL_SEED = 1_000_000
RECIPES = {
    "mlp": ob.Recipe(
        model="mlp", epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, model_options={"hidden": (64,)}
    ),
    "cnn": ob.Recipe(model="cnn", epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4),
}


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def best_rate(flops: float, fn, reps: int) -> dict[str, float]:
    """FLOP/s of ``fn`` (best of ``reps``), by wall and by CPU time."""
    fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        with Clock() as c:
            fn()
        wall, cpu = min(wall, c.wall), min(cpu, c.cpu)
    return {"wall": flops / wall, "cpu": flops / max(cpu, 1e-9)}


def mm_reference(n: int, reps: int = 5) -> dict[str, float]:
    a, b = torch.randn(n, n), torch.randn(n, n)
    inner = max(1, int(2e9 // (2 * n**3)))
    return best_rate(2 * n**3 * inner, lambda: [torch.mm(a, b) for _ in range(inner)], reps)


def bmm_reference(models: int, batch: int, dims: list[int], reps: int = 5) -> dict[str, float]:
    """``torch.bmm`` over ``models`` on the per-model products of one MLP training step (feature-major):
    forward ``W h``, weight gradient ``g h^T`` and (not for the first layer) input gradient ``W^T g``."""
    layers = [
        (torch.randn(models, o, i), torch.randn(models, i, batch), torch.randn(models, o, batch))
        for i, o in zip(dims[:-1], dims[1:], strict=True)
    ]
    flops = sum(2 * models * batch * i * o * (2 if j == 0 else 3) for j, (i, o) in enumerate(zip(dims[:-1], dims[1:])))
    inner = 20

    def run() -> None:
        for _ in range(inner):
            for j, (w, h, g) in enumerate(layers):
                torch.bmm(w, h)
                torch.bmm(g, h.transpose(1, 2))
                if j:
                    torch.bmm(w.transpose(1, 2), g)

    return best_rate(flops * inner, run, reps)


def flops_per_example(recipe: ob.Recipe, data: ob.data.Dataset) -> float:
    """Forward + backward FLOPs of one training example (one batch counted, divided by its size)."""
    model = build_model(recipe.model, data.input_shape, data.num_classes, seed=0, options=recipe.options)
    X, y = data.tensors
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(X[: recipe.batch_size]), y[: recipe.batch_size]).backward()
    return counter.get_total_flops() / recipe.batch_size


def metric(unlearned: ModelStack, retrained: ModelStack, forget, retain, test) -> tuple[float, float]:
    """The challenge's forget score F and final score (F x RA ratio x TA ratio) from the two stacks."""
    conf, acc = {}, {}
    for key, stack in (("u", unlearned), ("r", retrained)):
        lf = stack.logits(forget.tensors[0]).numpy()
        conf[key] = np.stack([logit_scaled_confidence(lf[i], forget.y) for i in range(len(stack))])
        acc[key] = [(stack.logits(d.tensors[0]).argmax(-1).numpy() == d.y).mean(axis=1) for d in (retain, test)]
    eps = nips_epsilons(conf["u"], conf["r"])
    forget_score = float(np.mean(nips_points(eps, len(unlearned))))
    return forget_score, float(nips_final_score(forget_score, acc["u"][0], acc["r"][0], acc["u"][1], acc["r"][1]))


def evaluation(recipe: ob.Recipe, train, test, request, method: str, models: int) -> dict:
    """The challenge protocol's evaluation of ``method`` with ``models`` a side, each phase timed."""
    forget, retain = request.split(train)
    seeds = list(range(models))
    phases = {}
    with Clock() as c:
        original = ob.train(recipe.with_seed(ORIGINAL_SEED), train)
    phases["original"] = c
    with Clock() as c:
        retrained = train_many(recipe, retain, seeds)
    phases["retrained"] = c
    with Clock() as c:
        copies = ModelStack.from_models([original] * models, seeds=seeds, recipe=recipe.with_seed(0))
        result = unlearn_many(copies, request, train, method=method)
    phases["unlearning"] = c
    with Clock() as c:
        forget_score, score = metric(result.stack, retrained, forget, retain, test)
    phases["metric"] = c
    fpe = {"train": flops_per_example(recipe, train), "retain": flops_per_example(recipe, retain)}
    return {
        "models": models,
        **{f"{k}_wall": v.wall for k, v in phases.items()},
        **{f"{k}_cpu": v.cpu for k, v in phases.items()},
        "original_flops": recipe.epochs * fpe["train"] * len(train),
        "retrained_flops": recipe.epochs * fpe["retain"] * len(retain) * models,
        "forget_score": forget_score,
        "score": score,
        "vectorised": result.vectorised,
    }


def loop(recipe: ob.Recipe, train, request, method: str, models: int) -> dict:
    """Retrain and unlearn ``models`` seeds one at a time (the one original trained once, not timed)."""
    _, retain = request.split(train)
    original = ob.train(recipe.with_seed(ORIGINAL_SEED), train)
    times = {"retrain": [0.0, 0.0], "unlearn": [0.0, 0.0]}
    for s in range(models):
        with Clock() as c:
            ob.train(recipe.with_seed(s), retain)
        times["retrain"][0] += c.wall
        times["retrain"][1] += c.cpu
        with Clock() as c:
            ob.unlearn(original, request, train, method=method, seed=s, recipe=recipe.with_seed(s))
        times["unlearn"][0] += c.wall
        times["unlearn"][1] += c.cpu
    return {"models": models, **{f"{k}_{w}": v[i] for k, v in times.items() for i, w in enumerate(("wall", "cpu"))}}


def measure(args) -> dict:
    torch.set_num_threads(args.threads)
    train, test = get_suite("digits").load()
    request = ob.ForgetRequest(train.sample_ids(0.1, seed=0))
    out: dict = {
        "threads": args.threads,
        "load_start": os.getloadavg()[0],
        "method": args.method,
        "models": args.models,
        "code": os.environ.get("NIPS_SCALE_CODE", "this tree"),
    }
    out["mm512"], out["mm2048"] = mm_reference(512), mm_reference(2048)
    try:
        from obliviate.training.many import STACKED_CHUNK as chunk
    except ImportError:  # the code before the direct path: vmap, 256 models per call
        chunk = 256
    out["chunk"] = min(chunk, args.models)
    out["bmm"] = bmm_reference(out["chunk"], 64, [64, 64, 10])
    for name in ("mlp", "cnn"):
        if args.only and name != args.only:
            continue
        n = args.models if name == "mlp" else min(args.cnn_models, args.models)
        r = evaluation(RECIPES[name], train, test, request, args.method, n)
        r["loop"] = loop(RECIPES[name], train, request, args.method, min(args.loop_models, n))
        out[name] = r
        print(name, json.dumps(r), flush=True)
    out["load_end"] = os.getloadavg()[0]
    return out


def rows(res: dict, label: str, n: int) -> list[str]:
    """Table rows of one run (``res`` from :func:`measure`), scaled to ``n`` models a side."""
    peak = max(res["mm512"]["cpu"], res["mm2048"]["cpu"])
    lines = []
    for name in ("mlp", "cnn"):
        if name not in res:
            continue
        r, lp = res[name], res[name]["loop"]
        k = n / r["models"]
        wall = {
            p: r[f"{p}_wall"] * (1 if p == "original" else k) for p in ("original", "retrained", "unlearning", "metric")
        }
        cpu = {
            p: r[f"{p}_cpu"] * (1 if p == "original" else k) for p in ("original", "retrained", "unlearning", "metric")
        }
        flops = r["original_flops"] + r["retrained_flops"] * k
        rate = r["retrained_flops"] / r["retrained_cpu"]  # train_many's rate (the original is one ob.train)
        of_bmm = f"{100 * rate / res['bmm']['cpu']:.0f}%" if name == "mlp" else "-"
        loop_cpu = (lp["retrain_cpu"] + lp["unlearn_cpu"]) / lp["models"]
        stack_cpu = (r["retrained_cpu"] + r["unlearning_cpu"]) / r["models"]
        train_ratio = (lp["retrain_cpu"] / lp["models"]) / (r["retrained_cpu"] / r["models"])
        scaled = "" if k == 1 else f" (measured on {r['models']}, x{k:g})"
        lines.append(
            f"| {label} | {name} | {n}{scaled} | {wall['original']:.1f} / {cpu['original']:.1f} | "
            f"{wall['retrained']:.1f} / {cpu['retrained']:.1f} | {wall['unlearning']:.1f} / {cpu['unlearning']:.1f} | "
            f"{wall['metric']:.1f} / {cpu['metric']:.1f} | **{sum(wall.values()):.1f} / {sum(cpu.values()):.1f}** | "
            f"{flops / 1e12:.3f} | {rate / 1e9:.1f} | **{100 * rate / peak:.0f}%** | "
            f"{of_bmm} | "
            f"{flops / peak:.1f} | {loop_cpu / stack_cpu:.2f}x (train {train_ratio:.2f}x; loop of {lp['models']}) | "
            f"{r['forget_score']:.3f} / {r['score']:.3f} |"
        )
    return lines


def block(after: dict, before: dict | None, command: str) -> str:
    n = after["models"]
    refs = []
    for label, res in (("before", before), ("after", after)):
        if res is None:
            continue
        refs.append(
            f"{label} ({res['code']}): load {res['load_start']:.1f} -> {res['load_end']:.1f}, {res['threads']} thread(s); "
            f"mm 512 {res['mm512']['cpu'] / 1e9:.0f} GFLOP/s CPU-time ({res['mm512']['wall'] / 1e9:.0f} wall), "
            f"mm 2048 {res['mm2048']['cpu'] / 1e9:.0f} ({res['mm2048']['wall'] / 1e9:.0f}), bmm on the MLP step's "
            f"shapes at {res['chunk']} models {res['bmm']['cpu'] / 1e9:.0f} ({res['bmm']['wall'] / 1e9:.0f})"
        )
    return "\n".join(
        [
            f"## NeurIPS 2023 evaluation of one method under the challenge protocol ({n} unlearned + {n} retrained, digits)",
            "",
            f"`{command}`; method `{after['method']}`, random 10% forget set, one original.",
            "",
            *[f"- {r}" for r in refs],
            "",
            "| code | model | models a side | original s (wall / CPU) | retrained s | unlearning s | metric s | "
            "whole evaluation s | training TFLOP | train_many GFLOP/s (CPU time) | of mm peak | of bmm (same shapes) | "
            "floor s (FLOP / mm peak) | loop / stack (CPU) | NeurIPS F / score |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *(rows(before, "before", n) if before else []),
            *rows(after, "after", n),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=512)
    parser.add_argument("--cnn-models", type=int, default=8, help="CNNs actually trained (scaled to --models)")
    parser.add_argument("--loop-models", type=int, default=4, help="models of the plain-loop baseline (scaled)")
    parser.add_argument("--method", default="gradient_ascent")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=("mlp", "cnn"))
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--before", help="a previous run's --json, shown as the 'before' rows")
    parser.add_argument("--results-md", help="write the nips-scale block into this markdown file")
    args = parser.parse_args()
    res = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    before = json.loads(Path(args.before).read_text()) if args.before else None
    command = f"OMP_NUM_THREADS={args.threads} .venv/bin/python benchmarks/nips_scale.py " + " ".join(sys.argv[1:])
    text = block(res, before, command)
    print(text)
    if args.results_md:
        write_block("nips-scale", text, Path(args.results_md))


if __name__ == "__main__":
    main()
