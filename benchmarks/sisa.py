"""SISA: the time to delete one request against retraining, for S shards and R slices, and accuracy against S.

Speed (synthetic data): for S in {1, 2, 5, 10, 20} and R in {1, 5}, fit the ensemble (the time of
a full retraining of that ensemble), then delete one training id (the same seeded id in every
configuration) and time it. The baselines are the ensemble's full retraining and one monolithic
model trained with the same recipe on the same data. The training set's size is chosen at the
start so that the monolithic model takes at least 30 s here (a warm 1-epoch probe guesses it; the
set grows and the model is trained again until it does; the time is reported): busy shared cores
make any fixed size too fast or too slow.
Besides the wall-clock ratio, the work ratio (optimiser steps of the full retraining over the
steps of the deletion) is reported: it does not depend on how busy the machine is.

Accuracy: on the synthetic test split for every configuration above, and on digits (the default
split, the benchmark MLP recipe: 30 epochs, lr 0.05) for S in {1, 2, 5, 10, 20}, R = 1, vote and
mean aggregation, over 3 seeds, against the monolithic model with the same recipe and seeds.

Writes the ``sisa`` block of benchmarks/RESULTS.md and benchmarks/plots/sisa_speedup.png and
sisa_accuracy.png.

    .venv/bin/python benchmarks/sisa.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import torch

import obliviate as ob
from obliviate.exact import SISA, SISAEnsemble
from obliviate.exact.sisa import slice_epochs
from obliviate.training.loop import num_batches

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import write_block  # noqa: E402

PLOTS = Path(__file__).resolve().parent / "plots"
SHARDS = (1, 2, 5, 10, 20)
SLICES = (1, 5)
DIGITS_SEEDS = (0, 1, 2)
SYNTHETIC_RECIPE = ob.Recipe(model="mlp", epochs=10, lr=0.05, seed=0)
DIGITS_RECIPE = ob.Recipe(model="mlp", epochs=30, lr=0.05, seed=0)
MIN_MONOLITHIC_SECONDS = 30.0
SEPARATION = 0.4  # class means N(0, 0.4^2 I): hard enough that accuracy can move with S


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared, torch {torch.__version__}, 1 thread"


def timed(fn, *args, **kwargs):
    """``(fn(...), wall seconds, CPU seconds of this process)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def training_steps(ens: SISAEnsemble) -> int:
    """Optimiser steps of a full retraining of ``ens``: every slice's epochs over slices 0..r."""
    epochs = slice_epochs(ens.recipe.epochs, ens.slices)
    steps = 0
    for s in range(ens.shards):
        own = ens.slice_ids(s)
        for r, e in enumerate(epochs):
            seen = sum(len(ids) for ids in own[: r + 1])
            steps += e * num_batches(seen, ens.recipe.batch_size) if seen else 0
    return steps


def synthetic_split(n_train: int) -> tuple[ob.Dataset, ob.Dataset]:
    return ob.data.synthetic(n_train + n_train // 4, seed=0, separation=SEPARATION).split(test_size=0.2, seed=0)


def monolithic_at_least(seconds: float, quick: bool):
    """Train the monolithic model on a synthetic split grown until its training takes ``seconds``.

    The first size comes from a warm 1-epoch probe; if the model trains faster than ``seconds``
    (a quieter machine), the size grows by the shortfall (x1.25) and the model is trained again.
    """
    if quick:
        train, test = synthetic_split(4_000)
        model, elapsed, cpu = timed(ob.train, SYNTHETIC_RECIPE, train)
        return train, test, model, elapsed, cpu
    probe = ob.data.synthetic(10_000, seed=1, separation=SEPARATION)
    one_epoch = replace(SYNTHETIC_RECIPE, epochs=1)
    ob.train(one_epoch, probe)  # warm-up: the first call pays for lazy initialisation
    _, probe_seconds, _ = timed(ob.train, one_epoch, probe)
    n = 1.25 * seconds / (probe_seconds / len(probe) * SYNTHETIC_RECIPE.epochs)
    while True:
        n_train = int(math.ceil(n / 10_000) * 10_000)
        train, test = synthetic_split(n_train)
        model, elapsed, cpu = timed(ob.train, SYNTHETIC_RECIPE, train)
        print(f"synthetic: {len(train)} train, monolithic {elapsed:.1f} s", flush=True)
        if elapsed >= seconds:
            return train, test, model, elapsed, cpu
        n = n_train * 1.25 * seconds / elapsed


def speed_part(quick: bool, workdir: Path) -> dict:
    train, test, mono, mono_seconds, mono_cpu = monolithic_at_least(MIN_MONOLITHIC_SECONDS, quick)
    request = train.sample_ids(1, seed=0)
    rows = []
    for slices in SLICES:
        for shards in SHARDS:
            ens, fit_seconds, fit_cpu = timed(
                SISA(SYNTHETIC_RECIPE, shards=shards, slices=slices).fit, train, workdir / f"syn-{shards}-{slices}"
            )
            accuracy = ob.evaluation.accuracy(ens.module(), test)
            full_steps = training_steps(ens)
            report, delete_seconds, delete_cpu = timed(ens.delete, request, train)
            rows.append(
                {
                    "shards": shards,
                    "slices": slices,
                    "fit_s": fit_seconds,
                    "delete_s": delete_seconds,
                    "fit_cpu": fit_cpu,
                    "delete_cpu": delete_cpu,
                    "speedup": fit_seconds / delete_seconds,
                    "speedup_cpu": fit_cpu / delete_cpu,
                    "speedup_mono": mono_seconds / delete_seconds,
                    "speedup_mono_cpu": mono_cpu / delete_cpu,
                    "work_ratio": full_steps / max(1, report.gradient_steps),
                    "rebuilt": report.slices_rebuilt,
                    "accuracy": accuracy,
                }
            )
            print(rows[-1], flush=True)
    return {
        "n_train": len(train),
        "n_test": len(test),
        "mono_seconds": mono_seconds,
        "mono_cpu": mono_cpu,
        "mono_accuracy": ob.evaluation.accuracy(mono, test),
        "request": int(request[0]),
        "rows": rows,
    }


def digits_part(quick: bool, workdir: Path) -> dict:
    train, test = ob.data.digits().split(test_size=0.25, seed=0)
    seeds = DIGITS_SEEDS[:1] if quick else DIGITS_SEEDS
    mono = [ob.evaluation.accuracy(ob.train(DIGITS_RECIPE.with_seed(seed), train), test) for seed in seeds]
    acc: dict[tuple[str, int], list[float]] = {}
    for aggregation in ("vote", "mean"):
        for shards in SHARDS:
            for seed in seeds:
                sisa = SISA(DIGITS_RECIPE.with_seed(seed), shards=shards, aggregation=aggregation, seed=seed)
                ens = sisa.fit(train, workdir / f"digits-{aggregation}-{shards}-{seed}")
                acc.setdefault((aggregation, shards), []).append(ob.evaluation.accuracy(ens.module(), test))
            print(aggregation, shards, acc[(aggregation, shards)], flush=True)
    return {"mono": mono, "acc": acc, "seeds": seeds}


def plot_speedup(speed: dict, folder: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    shards = np.array(SHARDS)
    for slices, marker in zip(SLICES, "os", strict=True):
        rows = [r for r in speed["rows"] if r["slices"] == slices]
        line = ax.plot(shards, [r["speedup_cpu"] for r in rows], marker=marker,
                       label=f"R={slices}: vs the ensemble's full retrain (CPU)")[0]
        ax.plot(shards, [r["speedup"] for r in rows], marker=marker, color=line.get_color(), ls=":", alpha=0.5,
                label=f"R={slices}: vs the ensemble's full retrain (wall)")
        ax.plot(shards, [r["speedup_mono_cpu"] for r in rows], marker=marker, ls="--", alpha=0.8,
                label=f"R={slices}: vs one monolithic model (CPU)")
    ax.plot(shards, 0.8 * shards, color="black", lw=1, label="target 0.8 S")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(shards, [str(s) for s in shards])
    ax.set_xlabel("shards S")
    ax.set_ylabel("speedup of one deletion (x)")
    ax.set_title(f"SISA deletion of one id, synthetic n={speed['n_train']:,}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    folder.mkdir(exist_ok=True)
    path = folder / "sisa_speedup.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy(speed: dict, digits: dict, folder: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    shards = np.array(SHARDS)
    mono = 100 * np.mean(digits["mono"])
    for aggregation, marker in (("vote", "o"), ("mean", "s")):
        values = np.array([[100 * a for a in digits["acc"][(aggregation, s)]] for s in SHARDS])
        left.errorbar(shards, values.mean(1), yerr=values.std(1), marker=marker, capsize=3, label=f"SISA, {aggregation}")
    left.axhline(mono, color="black", label="monolithic")
    left.axhspan(mono - 2, mono, color="grey", alpha=0.15, label="within 2 points")
    left.set_title(f"digits (mean of {len(digits['seeds'])} seeds, R=1)")
    for slices, marker in zip(SLICES, "os", strict=True):
        rows = [r for r in speed["rows"] if r["slices"] == slices]
        right.plot(shards, [100 * r["accuracy"] for r in rows], marker=marker, label=f"SISA, vote, R={slices}")
    right.axhline(100 * speed["mono_accuracy"], color="black", label="monolithic")
    right.set_title(f"synthetic n={speed['n_train']:,}")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(shards, [str(s) for s in shards])
        ax.set_xlabel("shards S")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "sisa_accuracy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown(speed: dict, digits: dict, wall: float, command: str) -> str:
    lines = [
        "## SISA: deleting one request against retraining (issue 3)",
        "",
        f"Synthetic data, {speed['n_train']:,} training and {speed['n_test']:,} test examples (d=32, 10 classes, separation {SEPARATION}; the size "
        f"is set at run time so that one monolithic model takes >= {MIN_MONOLITHIC_SECONDS:.0f} s here: it took "
        f"**{speed['mono_seconds']:.1f} s**), recipe MLP (128, 64), {SYNTHETIC_RECIPE.epochs} epochs, lr "
        f"{SYNTHETIC_RECIPE.lr}, batch {SYNTHETIC_RECIPE.batch_size}. One request deletes training id "
        f"{speed['request']} (the same id for every configuration, one repeat each: the grid already takes most "
        "of the 10 minutes). *Full retrain* is `SISA.fit` of the same ensemble; the deletion's time includes "
        "re-reading and verifying every checkpoint and the atomic commit. Times are given as wall-clock / CPU "
        "time of the process (torch on 1 thread, so CPU time is the work done, whatever the other jobs on the "
        "shared cores do; wall-clock for the same work varied up to 2.5x between runs); *work ratio* is the "
        "optimiser steps of the full retrain over the deletion's.",
        "",
        f"Monolithic model: {speed['mono_seconds']:.1f} s wall / {speed['mono_cpu']:.1f} s CPU, "
        f"{100 * speed['mono_accuracy']:.1f}% test accuracy.",
        "",
        "| S | R | full retrain (s) | delete (s) | speedup vs ensemble | target 0.8 S | met (wall / CPU) "
        "| speedup vs monolithic | work ratio | slices retrained | test acc. (vote) |",
        "|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---|---:|",
    ]
    for r in speed["rows"]:
        rebuilt = "; ".join(f"shard {s}: {v[0]}..{v[-1]}" if len(v) > 1 else f"shard {s}: {v[0]}"
                            for s, v in r["rebuilt"].items())
        target = 0.8 * r["shards"]
        met = " / ".join("yes" if r[k] >= target else "no" for k in ("speedup", "speedup_cpu"))
        lines.append(
            f"| {r['shards']} | {r['slices']} | {r['fit_s']:.1f} / {r['fit_cpu']:.1f} | "
            f"{r['delete_s']:.2f} / {r['delete_cpu']:.2f} | {r['speedup']:.1f}x / {r['speedup_cpu']:.1f}x | "
            f"{target:.1f}x | {met} | {r['speedup_mono']:.1f}x / {r['speedup_mono_cpu']:.1f}x | "
            f"{r['work_ratio']:.1f}x | {rebuilt} | {100 * r['accuracy']:.1f}% |"
        )
    mono = 100 * np.mean(digits["mono"])
    lines += [
        "",
        f"Digits accuracy against S (default split, MLP 30 epochs, lr 0.05, R=1, mean ± sd over seeds "
        f"{list(digits['seeds'])}; monolithic {mono:.1f}%):",
        "",
        "| S | vote | mean | vote - monolithic | mean - monolithic |",
        "|---:|---:|---:|---:|---:|",
    ]
    for s in SHARDS:
        vote, mean = (100 * np.array(digits["acc"][(a, s)]) for a in ("vote", "mean"))
        lines.append(
            f"| {s} | {vote.mean():.1f} ± {vote.std():.1f} | {mean.mean():.1f} ± {mean.std():.1f} | "
            f"{vote.mean() - mono:+.1f} | {mean.mean() - mono:+.1f} |"
        )
    at5 = {a: 100 * np.mean(digits["acc"][(a, 5)]) - mono for a in ("vote", "mean")}
    met = {k: sum(r[k] >= 0.8 * r["shards"] for r in speed["rows"]) for k in ("speedup", "speedup_cpu")}
    lines += [
        "",
        f"Targets: speedup >= 0.8 S against the ensemble's full retrain: met in {met['speedup']} of "
        f"{len(speed['rows'])} configurations by wall-clock, {met['speedup_cpu']} of {len(speed['rows'])} by CPU time; "
        "accuracy within 2 points of the monolithic model at S = 5 on digits: vote "
        f"{at5['vote']:+.1f} ({'met' if at5['vote'] >= -2 else 'missed'}), mean {at5['mean']:+.1f} "
        f"({'met' if at5['mean'] >= -2 else 'missed'}).",
        "",
        "Plots: `benchmarks/plots/sisa_speedup.png`, `benchmarks/plots/sisa_accuracy.png`.",
        "",
        f"Command: `{command}` (wall {wall / 60:.1f} min; {machine()}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run; plots to a temporary folder, no RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sisa-bench-") as tmp:
        speed = speed_part(args.quick, Path(tmp))
        digits = digits_part(args.quick, Path(tmp))
    folder = Path(tempfile.mkdtemp(prefix="sisa-plots-")) if args.quick else PLOTS
    plots = plot_speedup(speed, folder), plot_accuracy(speed, digits, folder)
    text = markdown(speed, digits, time.perf_counter() - wall0, ".venv/bin/python benchmarks/sisa.py")
    print(text)
    if args.quick:
        print(f"(quick run: plots in {folder}: {', '.join(p.name for p in plots)}; RESULTS.md left alone)")
    else:
        write_block("sisa", text)


if __name__ == "__main__":
    main()
