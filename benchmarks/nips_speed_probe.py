"""Where a stacked training step's time goes, variant against variant, in one process (issue 16 item 3).

Every figure is the best of ``--rounds`` interleaved rounds of CPU time (``time.thread_time``, one
torch thread): on a shared machine wall time moves 2-4x with the other jobs, the CPU time of a
single-threaded step much less, and variants measured side by side see the same machine.

1. The 10-class head's product per model, row-major ``x W^T`` (``b x 64`` by ``64 x 10``, what
   ``vmap`` of ``nn.Linear`` runs) against feature-major ``W x^T`` (``10 x 64`` by ``64 x b``, what
   :mod:`obliviate.models.stacked` runs), as ``torch.bmm`` over ``M`` models.
2. One training step of ``M`` digits MLPs (64-64-10, batch 64, SGD with momentum and weight decay):
   ``vmap(grad)`` (the old path), the stacked forward with autograd, and the explicit backward
   (``MLP.stacked_vjp``, the path ``train_many`` takes), each with torch's foreach or fused SGD;
   GFLOP/s = ``(6 P_w - 2 d_in h_1) b M`` FLOPs per step over its CPU time, against a 512 x 512
   ``torch.mm`` measured in the same run.
3. Forward + backward of one batch of ``M`` small CNNs: a loop over the models (each ``nn.Module``,
   as ``ob.train`` runs it), ``vmap`` of ``functional_call``, and the stacked forward (one grouped
   channels-last convolution per layer).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_speed_probe.py
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from obliviate.bench import get_suite
from obliviate.models import build_model
from obliviate.training.loop import seeded_generator
from obliviate.training.many import (
    ModelStack,
    cross_entropy,
    stack_optimizer,
    stacked_cross_entropy,
    stacked_cross_entropy_and_grad,
    stacked_objective,
)

B = 64


def best_cpu(variants: dict, rounds: int, inner: int) -> dict[str, float]:
    """Best CPU seconds per call of each variant, rounds interleaved."""
    best = dict.fromkeys(variants, float("inf"))
    for fn in variants.values():
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.thread_time()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (time.thread_time() - start) / inner)
    return best


def mm512() -> float:
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    return 2 * 512**3 / best_cpu({"mm": lambda: torch.mm(a, b)}, 5, 20)["mm"]


def head_layouts(models: int, rounds: int) -> str:
    h, w = torch.randn(models, B, 64), torch.randn(models, 10, 64)
    ht = h.transpose(1, 2).contiguous()
    flops = 2 * models * B * 64 * 10
    t = best_cpu({"x W^T": lambda: torch.bmm(h, w.transpose(1, 2)), "W x^T": lambda: torch.bmm(w, ht)}, rounds, 50)
    return ", ".join(f"{k} {flops / v / 1e9:.1f} GFLOP/s" for k, v in t.items())


def mlp_step(models: int, rounds: int) -> dict[str, float]:
    train, _ = get_suite("digits").load()
    X, y = train.tensors
    options = {"hidden": (64,)}
    stack = ModelStack.from_models([build_model("mlp", (64,), 10, seed=s, options=options) for s in range(models)])
    orders = torch.stack([torch.randperm(len(X), generator=seeded_generator(s, 1)) for s in range(models)])
    batches = [orders[:, i * B : (i + 1) * B] for i in range(len(X) // B)]
    state = {"i": 0}

    def next_batch():
        idx = batches[state["i"] % len(batches)]
        state["i"] += 1
        flat = idx.reshape(-1)
        return X.index_select(0, flat).view(models, B, 64), y.index_select(0, flat).view(models, B)

    def make(kind: str, fused: bool):
        leaves = {k: v.clone().requires_grad_(kind == "autograd") for k, v in stack.params.items()}
        opt = stack_optimizer("sgd", leaves.values(), lr=0.05, momentum=0.9, weight_decay=5e-4, fused=fused)
        step_fn, _ = stacked_objective(stack.forward_fn(), lambda model, x, t: cross_entropy(model(x), t))
        template = stack.template

        def step() -> None:
            xb, yb = next_batch()
            if kind == "vmap":
                grads, _, _, _ = step_fn(leaves, {}, xb, yb)
                for k, p in leaves.items():
                    p.grad = grads[k]
            elif kind == "autograd":
                losses = stacked_cross_entropy(template.stacked_forward(leaves, xb), yb)
                for p in leaves.values():
                    p.grad = None
                losses.sum().backward()
            else:
                logits, backward = template.stacked_vjp(leaves, xb)
                _, g = stacked_cross_entropy_and_grad(logits, yb)
                for k, gk in backward(g).items():
                    leaves[k].grad = gk
            opt.step()

        return step

    variants = {
        f"{kind} + {'fused' if fused else 'foreach'} SGD": make(kind, fused)
        for kind in ("vmap", "autograd", "explicit")
        for fused in (False, True)
    }
    seconds = best_cpu(variants, rounds, 10)
    flops = (6 * (64 * 64 + 64 * 10) - 2 * 64 * 64) * B * models
    return {k: flops / v for k, v in seconds.items()}


def cnn_step(models: int, rounds: int) -> dict[str, float]:
    train, _ = get_suite("digits").load()
    X, y = train.tensors
    modules = [build_model("cnn", (64,), 10, seed=s) for s in range(models)]
    stack = ModelStack.from_models(modules)
    idx = torch.stack([torch.randperm(len(X), generator=seeded_generator(s, 1))[:B] for s in range(models)])
    xb, yb = X[idx], y[idx]
    params = {k: v.clone().requires_grad_(True) for k, v in stack.params.items()}
    step_fn, _ = stacked_objective(stack.forward_fn(), lambda model, x, t: cross_entropy(model(x), t))
    detached = {k: v.detach() for k, v in params.items()}

    def loop() -> None:
        for m, module in enumerate(modules):
            module.zero_grad()
            F.cross_entropy(module(xb[m]), yb[m]).backward()

    def vmapped() -> None:
        step_fn(detached, {}, xb, yb)

    def stacked() -> None:
        for p in params.values():
            p.grad = None
        stacked_cross_entropy(stack.template.stacked_forward(params, xb), yb).sum().backward()

    seconds = best_cpu({"loop of modules": loop, "vmap": vmapped, "stacked (grouped conv)": stacked}, rounds, 1)
    return {k: seconds["loop of modules"] / v for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[32, 64, 256])
    parser.add_argument("--cnn-models", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 1 torch thread; CPU-time figures")
    print(f"mm 512x512: {mm512() / 1e9:.1f} GFLOP/s")
    for m in args.models:
        print(f"M={m} 10-class head as bmm: {head_layouts(m, args.rounds)}")
        rates = mlp_step(m, args.rounds)
        print(f"M={m} MLP step: " + "; ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in rates.items()), flush=True)
    ratios = cnn_step(args.cnn_models, args.rounds)
    print(
        f"M={args.cnn_models} CNN fwd+bwd, speed against the loop: "
        + "; ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    )
    print(f"mm 512x512 again: {mm512() / 1e9:.1f} GFLOP/s; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
