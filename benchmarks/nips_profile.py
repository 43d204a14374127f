"""Where a stacked training step of the digits MLP spends its time, and at what share of matmul throughput.

Replays ``train_many``'s loop (``obliviate.training.many._fit_stack``: stacked batches, the vmapped
``grad_and_value`` step, the finite check, the optimiser and schedule steps) with a timer around
each phase, for stacks of ``--models`` models, and compares the achieved FLOP/s of the step with
the measured throughput of ``torch.bmm`` on the same per-model shapes (and of one large matmul).
FLOPs of a step: forward ``2 b sum_l n_in n_out`` plus backward twice that (weight and input
gradients), i.e. ``6 b P_w`` per model for ``P_w`` weight entries, ``b`` the batch.

The optimiser phase runs with and without torch's fused SGD kernel (``FUSED_OPTIMISER`` in
``obliviate.training.many``), and ``--train-many`` times whole ``train_many`` runs (the digits
recipe, 30 epochs) both ways, alternating, best of ``--repeats``. All of it measures the ``vmap`` path
(``STACKED_FORWARD`` off): the direct path that ``train_many`` now takes for the MLP always steps
fused and is measured by ``benchmarks/nips_speed_probe.py`` and ``benchmarks/nips_scale.py``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_profile.py --models 64 256 --steps 100 --train-many 64
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import obliviate.training.many as many
from obliviate.bench import get_suite
from obliviate.models import build_model
from obliviate.training.loop import make_scheduler, minibatches, seeded_generator
from obliviate.training.many import (
    ModelStack,
    check_stack_finite,
    cross_entropy,
    stack_optimizer,
    stacked_batches,
    stacked_objective,
    train_many,
)


def bmm_flops(m: int, b: int, dims: list[int], repeats: int = 50) -> float:
    """FLOP/s of the forward and backward matmuls of the MLP's layers as ``torch.bmm`` over ``m`` models."""
    mats = [(torch.randn(m, b, i), torch.randn(m, i, o), torch.randn(m, b, o)) for i, o in zip(dims[:-1], dims[1:])]
    flops = sum(6 * m * b * i * o for i, o in zip(dims[:-1], dims[1:]))
    start = time.perf_counter()
    for _ in range(repeats):
        for x, w, g in mats:
            torch.bmm(x, w)  # forward
            torch.bmm(g, w.transpose(1, 2))  # input gradient
            torch.bmm(x.transpose(1, 2), g)  # weight gradient
    return flops * repeats / (time.perf_counter() - start)


def big_matmul_flops(n: int = 512, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def profile(models: int, steps: int) -> dict[str, float]:
    suite = get_suite("digits")
    train, _ = suite.load()
    recipe = suite.recipe
    X, y = train.tensors
    seeds = list(range(models))
    stack = ModelStack.from_models(
        [build_model(recipe.model, X.shape[1:], 10, seed=s) for s in seeds], seeds=seeds, recipe=recipe
    )
    leaves = {k: v.clone() for k, v in stack.params.items()}
    buffers = {k: v.clone() for k, v in stack.buffers.items()}
    step_fn, _ = stacked_objective(stack.forward_fn(), lambda model, x, t: cross_entropy(model(x), t))
    opt = stack_optimizer(
        "sgd", leaves.values(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    sched = make_scheduler(recipe.schedule, opt, 10_000)
    gens = [seeded_generator(s, stream=1) for s in seeds]
    phases = dict.fromkeys(("batches", "grad step (vmap)", "finite check", "optimiser", "schedule"), 0.0)
    done, t_all = 0, time.perf_counter()
    while done < steps:
        it = stacked_batches(gens, len(train), recipe.batch_size)
        while done < steps:
            t0 = time.perf_counter()
            try:
                idx = next(it)
            except StopIteration:
                break
            xb, yb = X[idx], y[idx]
            t1 = time.perf_counter()
            grads, losses, _, buffers = step_fn(leaves, buffers, xb, yb)
            t2 = time.perf_counter()
            check_stack_finite(losses, seeds, step=done, where="profile")
            t3 = time.perf_counter()
            for k, p in leaves.items():
                p.grad = grads[k]
            opt.step()
            t4 = time.perf_counter()
            sched.step()
            t5 = time.perf_counter()
            for key, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                phases[key] += dt
            done += 1
    total = time.perf_counter() - t_all
    dims = [X.shape[1], *[v.shape[1] for k, v in stack.params.items() if k.endswith("weight")]]
    weights = sum(v[0].numel() for k, v in stack.params.items() if k.endswith("weight"))
    flops = 6 * recipe.batch_size * weights * models * steps
    return {
        "models": models,
        "steps": steps,
        "total_s": total,
        **{k: v / total for k, v in phases.items()},
        "step_ms": 1000 * total / steps,
        "achieved_gflops": flops / total / 1e9,
        "bmm_gflops": bmm_flops(models, recipe.batch_size, dims) / 1e9,
        "batches_per_epoch": sum(1 for _ in minibatches(len(train), recipe.batch_size, shuffle=False)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--train-many", type=int, default=0, help="models for the whole-run timing (0: skip)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    many.STACKED_FORWARD = False  # the vmap path this profile replays
    print(
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 1 torch thread; "
        f"512x512 matmul {big_matmul_flops() / 1e9:.1f} GFLOP/s"
    )
    for m, fused in ((m, f) for m in args.models for f in (False, True)):
        many.FUSED_OPTIMISER = fused
        r = profile(m, args.steps)
        print(f"fused optimiser {fused}: ", end="")
        split = ", ".join(
            f"{k} {100 * r[k]:.0f}%" for k in ("batches", "grad step (vmap)", "finite check", "optimiser", "schedule")
        )
        print(
            f"M={m}: {r['step_ms']:.1f} ms/step ({split}); {r['achieved_gflops']:.2f} GFLOP/s achieved, "
            f"bmm on the same shapes {r['bmm_gflops']:.2f} GFLOP/s "
            f"({100 * r['achieved_gflops'] / r['bmm_gflops']:.0f}%)"
        )

    if args.train_many:
        suite = get_suite("digits")
        train, _ = suite.load()
        best = {False: float("inf"), True: float("inf")}
        for _ in range(args.repeats):
            for fused in (False, True):
                many.FUSED_OPTIMISER = fused
                start = time.perf_counter()
                train_many(suite.recipe, train, list(range(args.train_many)), show_progress=False)
                best[fused] = min(best[fused], time.perf_counter() - start)
        print(
            f"train_many, {args.train_many} models x {suite.recipe.epochs} epochs: plain SGD {best[False]:.1f} s, "
            f"fused SGD {best[True]:.1f} s ({best[False] / best[True]:.2f}x), best of {args.repeats}"
        )


if __name__ == "__main__":
    main()
