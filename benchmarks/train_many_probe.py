"""train_many / unlearn_many on digits: wall time, the ratio against a plain loop, and the share of
this machine's fp32 matrix-multiply throughput that the training FLOPs reach.

    .venv/bin/python benchmarks/train_many_probe.py [--models 512] [--threads 2]

Efficiency = training FLOPs / (wall seconds x measured torch.mm FLOP/s). Training FLOPs count the
matrix products only: 3 x the forward multiply-adds x 2 (forward, gradient of the weights and of
the inputs) per example-pass, from hooks on every Linear and Conv2d layer. The loop baseline
trains a subset of the seeds one by one with ``ob.train`` and is scaled to all seeds (said so in
the table). Writes the ``train-many`` block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

import obliviate as ob
from obliviate.models import build_model
from obliviate.training import train_many
from obliviate.unlearning import unlearn_many

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import write_block  # noqa: E402


def mm_flops_per_second(n: int = 2048, reps: int = 5) -> float:
    """Best of ``reps`` fp32 ``torch.mm`` of two n x n matrices: 2 n^3 / seconds."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of Linear and Conv2d layers for one example."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features
        else:
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * output[0].numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for h in handles:
        h.remove()
    return total


def training_flops(recipe: ob.Recipe, data: ob.data.Dataset, models: int) -> float:
    model = build_model(recipe.model, data.input_shape, data.num_classes, options=recipe.options)
    return 3.0 * forward_flops(model, data.input_shape) * len(data) * recipe.epochs * models


def timed(fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def probe(recipe: ob.Recipe, data, models: int, loop_models: int, chunks, peak: float) -> dict:  # noqa: ANN001
    """Chunk sweep on 3 epochs, then the full run at the best chunk, and the scaled loop."""
    short = ob.Recipe.from_dict({**recipe.to_dict(), "epochs": min(3, recipe.epochs)})
    sweep = {c: timed(lambda c=c: train_many(short, data, range(models), chunk=c))[1] for c in chunks if c <= models}
    best = min(sweep, key=sweep.get)
    _, wall = timed(lambda: train_many(recipe, data, range(models), chunk=best))
    _, loop = timed(lambda: [ob.train(recipe.with_seed(s), data) for s in range(loop_models)])
    flops = training_flops(recipe, data, models)
    return {
        "sweep": sweep,
        "chunk": best,
        "wall": wall,
        "loop": loop * models / loop_models,
        "loop_models": loop_models,
        "flops": flops,
        "efficiency": flops / (wall * peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, _ = ob.data.digits().split(test_size=0.25, seed=0)
    load = os.getloadavg()[0]
    peak = mm_flops_per_second()
    mlp = ob.Recipe(model="mlp", epochs=30, batch_size=64, model_options={"hidden": (64,)})
    m = probe(mlp, train, args.models, 16, (64, 128, 256, 512), peak)
    cnn_models = max(args.models // 16, 2)
    cnn = ob.Recipe(model="cnn", epochs=3, batch_size=64)
    c = probe(cnn, train, cnn_models, 2, (max(cnn_models // 2, 1), cnn_models), peak)

    stack = train_many(mlp, train, range(args.models))
    request = ob.ForgetRequest(train.ids_of_class(3))
    result, unlearn_wall = timed(lambda: unlearn_many(stack, request, train, method="finetune"))
    loop_n = 16
    _, unlearn_loop = timed(
        lambda: [
            ob.unlearn(stack.model(i), request, train, method="finetune", seed=s)
            for i, s in enumerate(stack.seeds[:loop_n])
        ]
    )
    unlearn_loop *= args.models / loop_n
    peak_g = peak / 1e9
    lines = [
        "## train_many: many models in one vectorised program (digits)",
        "",
        f"Command: `.venv/bin/python benchmarks/train_many_probe.py --models {args.models} --threads {args.threads}` "
        f"(torch {torch.__version__}, {args.threads} threads; fp32 `torch.mm` 2048^2 measured at {peak_g:.0f} GFLOP/s "
        "in the same run). FLOPs: matrix products only, 3 x forward per example-pass. Loop: `ob.train` one seed at "
        "a time on a subset of the seeds, scaled to all (the subset size is given).",
        "",
        "| run | models | wall s | loop s (scaled) | x loop | GFLOP | % of mm throughput | chunk |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| MLP 64 hidden, 30 epochs, batch 64 | {args.models} | {m['wall']:.1f} | {m['loop']:.1f} (from {m['loop_models']}) "
        f"| {m['loop'] / m['wall']:.1f} | {m['flops'] / 1e9:.0f} | {100 * m['efficiency']:.0f}% | {m['chunk']} |",
        f"| small CNN (width 32), 3 epochs, batch 64 | {cnn_models} | {c['wall']:.1f} | {c['loop']:.1f} "
        f"(from {c['loop_models']}) | {c['loop'] / c['wall']:.1f} | {c['flops'] / 1e9:.0f} | "
        f"{100 * c['efficiency']:.0f}% | {c['chunk']} |",
        f"| unlearn_many finetune (5 epochs on D_r, class 3) of the MLPs | {args.models} | {unlearn_wall:.1f} "
        f"| {unlearn_loop:.1f} (from {loop_n}) | {unlearn_loop / unlearn_wall:.1f} | | | |",
        "",
        "Chunk sweep (3 epochs, MLP): "
        + ", ".join(f"{k} models per call {v:.2f} s" for k, v in m["sweep"].items())
        + f". Load average (1 min) at the start {load:.1f}, at the end {os.getloadavg()[0]:.1f}: other processes "
        "on the machine slow every number here (with 2 torch threads, spin-waits make contention costly).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_block("train-many", text)


if __name__ == "__main__":
    main()
