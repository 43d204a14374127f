"""ob.train's per-step overhead against a plain PyTorch loop over the same batches (issue 16, item 3).

Both loops train the benchmark MLP (digits, default split, ``Recipe(epochs=30)``: SGD, momentum 0.9,
lr 0.05, constant schedule, batch 64) from the same initial weights over the same seeded batches
(the trainer's id-sorted data, ``minibatches`` with the recipe's generator). The plain loop is the
textbook one: forward, cross-entropy, ``zero_grad``, ``backward``, ``step``; nothing else. Both
must end with bit-identical weights (checked), so the ratio measures overhead only. Each is timed
``--repeats`` times, alternating, on one torch thread; the medians and their ratio are printed
(target: ob.train <= 1.5x the plain loop).

``--cold`` also times the first call in a fresh process (each loop in its own subprocess, timed
around the call only): the first ``torch.optim`` optimiser of a process imports ``torch._dynamo``
(about 1 s here), which both loops pay. ``--cli`` times the whole ``obliviate train`` command (a
subprocess: interpreter start, imports, training, accuracy, save) with ``--threads 1`` and
``--threads 2`` (and ``OMP_NUM_THREADS`` set to match).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_overhead.py [--repeats 7] [--epochs 30] [--cli]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import obliviate as ob
from obliviate.models import build_model
from obliviate.training.loop import minibatches, seeded_generator


def plain_loop(recipe: ob.Recipe, data: ob.Dataset) -> torch.nn.Module:
    """The textbook loop over the trainer's batches (constant schedule: no scheduler needed)."""
    assert recipe.schedule == "constant" and recipe.optimizer == "sgd"
    model = build_model(recipe.model, data.input_shape, data.num_classes, seed=recipe.seed, options=recipe.options)
    data = data.sorted_by_id()
    X, y = data.tensors
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    generator = seeded_generator(recipe.seed, stream=1)
    model.train()
    for _ in range(recipe.epochs):
        for idx in minibatches(len(data), recipe.batch_size, generator=generator):
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def timed(fn) -> tuple[float, torch.nn.Module]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def cli_times(threads: int, epochs: int, repeats: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            cmd = [sys.executable, "-m", "obliviate", "train", "--epochs", str(epochs), "--threads", str(threads)]
            cmd += ["--out", str(Path(tmp) / f"m{r}.safetensors")]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


COLD = """
import sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, {here!r})
import obliviate as ob
from train_overhead import plain_loop
train, _ = ob.data.digits().split(test_size=0.25, seed=0)
recipe = ob.Recipe(epochs={epochs})
start = time.perf_counter()
ob.train(recipe, train) if {which!r} == "ob.train" else plain_loop(recipe, train)
print(time.perf_counter() - start)
"""


def cold_times(which: str, epochs: int, repeats: int) -> list[float]:
    code = COLD.format(here=str(Path(__file__).parent), epochs=epochs, which=which)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = [
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
        for _ in range(repeats)
    ]
    return [float(o.stdout.strip().splitlines()[-1]) for o in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cold", action="store_true", help="also time the first call in a fresh process")
    parser.add_argument("--cli", action="store_true", help="also time `obliviate train` at 1 and 2 threads")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, _ = ob.data.digits().split(test_size=0.25, seed=0)
    recipe = ob.Recipe(epochs=args.epochs)
    steps = args.epochs * -(-len(train) // recipe.batch_size)
    ob.train(recipe, train), plain_loop(recipe, train)  # warm-up
    ours, plain = [], []
    for _ in range(args.repeats):
        t, a = timed(lambda: ob.train(recipe, train))
        ours.append(t)
        t, b = timed(lambda: plain_loop(recipe, train))
        plain.append(t)
        assert same(a, b), "ob.train and the plain loop disagree: the comparison is void"
    mo, mp = statistics.median(ours), statistics.median(plain)
    print(f"digits MLP, {args.epochs} epochs, ~{steps} steps, 1 thread, median of {args.repeats} (weights bit-equal)")
    print(f"  ob.train    {mo:.3f} s  ({1e6 * mo / steps:.0f} us/step)  runs {[round(t, 3) for t in ours]}")
    print(f"  plain loop  {mp:.3f} s  ({1e6 * mp / steps:.0f} us/step)  runs {[round(t, 3) for t in plain]}")
    print(f"  ratio       {mo / mp:.2f}x  (target <= 1.5x)")
    if args.cold:
        n = max(3, args.repeats // 2)
        co, cp = cold_times("ob.train", args.epochs, n), cold_times("plain", args.epochs, n)
        print(
            f"  first call in a fresh process (median of {n}): ob.train {statistics.median(co):.3f} s, "
            f"plain loop {statistics.median(cp):.3f} s, ratio {statistics.median(co) / statistics.median(cp):.2f}x"
        )
    if args.cli:
        for threads in (1, 2):
            ts = cli_times(threads, args.epochs, max(3, args.repeats // 2))
            print(
                f"  obliviate train, {threads} thread(s): median {statistics.median(ts):.2f} s  runs {[round(t, 2) for t in ts]}"
            )


if __name__ == "__main__":
    main()
