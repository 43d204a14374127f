"""The challenge-protocol evaluation with its 512 + 512 models split across Ray workers, and its cost at ResNet-18 scale.

Part 1 (measured): one run of ``run_challenge`` (digits, scenario ``random-10pct``, one original,
512 unlearning runs per method, 512 retrained models, the NeurIPS metric) three times:

1. ``--backend local``: the tasks one after another in this process;
2. ``--backend ray`` on a local Ray this process starts (``run_tasks``: ``ray.init(address="local")``);
3. ``obliviate bench ... --backend ray --address HOST:PORT`` in a SECOND process, joining a Ray
   head this script starts with ``ray start --head --block`` (its own ``--temp-dir``, so nobody
   else's ``ray.init()`` finds it), stopped by its process group at the end.

Every per-model row (except the wall-clock ``seconds``/``efficiency``), the per-example view and
the over-seeds scores must be identical bit for bit across the three: each task is a pure function
of its job (``SEEDS_PER_TASK`` seeds, the same chunks on every backend) and runs with 1 torch
thread everywhere. The block reports the task split, each run's wall time and where it went
(Ray start-up or joining, the busiest worker's compute, the rest: scheduling, shipping jobs and
results), and the load.

Part 2 (on paper, from measured numbers): forward + backward FLOPs per example of
:class:`obliviate.models.resnet.ResNet18` at 32x32 (``torch.utils.flop_counter.FlopCounterMode``),
this machine's measured ResNet-18 training throughput, and the cost of the same evaluation of a
ResNet-18 on CIFAR-10 on a GPU cluster under stated recipes and utilisation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_ray.py --results-md /tmp/r_16ray.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from results_md import RESULTS, write_block
from torch.utils.flop_counter import FlopCounterMode

from obliviate.bench import get_suite
from obliviate.bench.challenge import SEEDS_PER_TASK, run_challenge
from obliviate.evaluation import nips_epsilons
from obliviate.models.resnet import ResNet18
from obliviate.parallel import run_tasks
from obliviate.results import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = "random-10pct"
TIMED = {"seconds", "efficiency"}  # wall-clock: different on every run, by design


# ---------------------------------------------------------------- part 1: local vs Ray


def _untimed_rows(doc: dict) -> list[tuple]:
    return [(r["scenario"], r["method"], r["seed"], r["metric"], r["value"]) for r in doc["rows"] if r["metric"] not in TIMED]


def _compare(reference: dict, other: dict) -> dict:
    """Row-by-row, value-by-value comparison (exact float equality; None for a non-finite value)."""
    a, b = _untimed_rows(reference), _untimed_rows(other)
    keys_equal = [r[:4] for r in a] == [r[:4] for r in b]
    diffs = [abs(x[4] - y[4]) for x, y in zip(a, b, strict=False) if x[4] is not None and y[4] is not None and x[4] != y[4]]
    none_mismatch = sum((x[4] is None) != (y[4] is None) for x, y in zip(a, b, strict=False))
    per_model = [r for r in a if r[2] is not None]
    return {
        "rows": len(a),
        "per_model_rows": len(per_model),
        "models": len({(r[1], r[2]) for r in per_model}),
        "identical": keys_equal and a == b,
        "differing": len(diffs) + none_mismatch + (0 if keys_equal else 1),
        "max_abs_diff": max(diffs, default=0.0),
        "per_example_identical": reference.get("per_example") == other.get("per_example"),
    }


def _scores(doc: dict) -> dict[str, tuple[float, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in doc["rows"]:
        if r["seed"] is None and r["metric"] in ("nips_score", "nips_forget_score"):
            out.setdefault(r["method"], {})[r["metric"]] = r["value"]
    return {m: (v.get("nips_forget_score"), v.get("nips_score")) for m, v in out.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_head(cpus: int, temp_dir: str) -> tuple[subprocess.Popen, str]:
    """``ray start --head --block`` in its own process group; returns it and the address once it answers."""
    port = _free_port()
    ray_bin = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", f"--num-cpus={cpus}", "--num-gpus=0",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start --head exited with {head.returncode}")
        probe = subprocess.run([str(ray_bin), "status", f"--address={address}"], capture_output=True, text=True)
        if probe.returncode == 0 and "CPU" in probe.stdout:
            return head, address
        time.sleep(2)
    _stop_head(head)
    raise RuntimeError("the Ray head did not answer within 180 s")


def _stop_head(head: subprocess.Popen) -> None:
    """End the head's process group (only the processes this script started)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(2)  # the group's other members (gcs, raylet, workers) get the same signal


def _split(doc: dict) -> dict:
    return doc["config"]["tasks"][SCENARIO]


def _overhead(split: dict, wall: float, startup: float) -> str:
    busiest = split["busiest_worker_seconds"]
    total = sum(split["task_seconds"])
    return (f"{wall:.1f} s wall = {startup:.1f} s start/join + {split['wall_seconds']:.1f} s tasks "
            f"({split['workers']} worker process(es); busiest worker {busiest:.1f} s of compute, all workers "
            f"{total:.1f} s; the rest of the tasks' wall, {split['wall_seconds'] - busiest:.1f} s, is scheduling, "
            "shipping jobs and results, and waiting for the shared cores)")


def part1(args) -> tuple[list[str], dict]:
    suite = get_suite("digits")
    methods = args.methods.split(",")
    options = {"methods": methods, "seeds": args.seeds, "scenarios": [SCENARIO], "full_seeds": args.full_seeds,
               "relearn": True, "show_progress": False}
    runs: dict[str, dict] = {}

    load = [os.getloadavg()[0]]
    start = time.perf_counter()
    runs["local"] = {"doc": run_challenge(suite, backend="local", **options), "startup": 0.0}
    runs["local"]["wall"] = time.perf_counter() - start
    print(f"local: {runs['local']['wall']:.1f} s", flush=True)

    import ray

    load.append(os.getloadavg()[0])
    start = time.perf_counter()
    run_tasks(abs, [0], backend="ray", num_cpus=args.workers)  # start the local Ray (timed apart from the work)
    startup = time.perf_counter() - start
    try:
        doc = run_challenge(suite, backend="ray", **options)
    finally:
        ray.shutdown()
    runs["ray"] = {"doc": doc, "startup": startup, "wall": time.perf_counter() - start}
    print(f"ray (local cluster): {runs['ray']['wall']:.1f} s", flush=True)

    if not args.skip_address:
        load.append(os.getloadavg()[0])
        temp_dir = tempfile.mkdtemp(prefix="rn", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        out_dir = Path(tempfile.mkdtemp(prefix="nips_ray_cli_"))
        start = time.perf_counter()
        head, address = _start_head(args.workers, temp_dir)
        startup = time.perf_counter() - start
        cmd = [str(Path(sys.executable).with_name("obliviate")), "bench", "--suite", "digits", "--seeds", str(args.seeds),
               "--scenario", SCENARIO, "--engine", "stack", "--methods", args.methods, "--full-seeds", str(args.full_seeds),
               "--backend", "ray", "--address", address, "--out", str(out_dir), "--no-progress"]
        try:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            cli_wall = time.perf_counter() - t0
        finally:
            _stop_head(head)
            shutil.rmtree(temp_dir, ignore_errors=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        doc = json.loads((out_dir / "results.json").read_text())
        shutil.rmtree(out_dir, ignore_errors=True)
        runs["address"] = {"doc": doc, "startup": startup, "wall": startup + cli_wall, "cmd": cmd}
        print(f"ray --address (second process): {cli_wall:.1f} s + head start {startup:.1f} s", flush=True)

    for name in ("local", "ray"):  # through results.json like the CLI's, so all three compare as written
        folder = Path(tempfile.mkdtemp(prefix=f"nips_ray_{name}_"))
        write_results(runs[name]["doc"], folder)
        runs[name]["doc"] = json.loads((folder / "results.json").read_text())
        shutil.rmtree(folder, ignore_errors=True)
    reference = runs["local"]["doc"]
    split = _split(reference)
    lines = [
        f"Task split: {split['count']} tasks per side of the comparison, seeds per task {sorted(set(split['seeds_per_task']))} "
        f"(`SEEDS_PER_TASK = {SEEDS_PER_TASK}`; each task trains its chunk's retrained models as one vmapped stack, "
        "unlearns a stack of copies of the one original with the chunk's seeds, and evaluates them; the one original is "
        "trained once in the driver and shipped with every task). Load average (1 min) before each run: "
        + ", ".join(f"{x:.1f}" for x in load) + f" on {os.cpu_count()} cores shared with other helpers.",
        "",
        "| run | backend | wall s | where the time went | rows equal to local (untimed) | per-example view | "
        + " | ".join(f"{m} F / score" for m in methods) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(methods),
    ]
    verdict = {}
    for name, label in (("local", "`--backend local`, this process"), ("ray", "`--backend ray`, local Ray started by "
                        f"`run_tasks` ({args.workers} CPUs)"), ("address", f"`--backend ray --address` from a second "
                        f"process (CLI) to a `ray start --head` cluster ({args.workers} CPUs)")):
        if name not in runs:
            continue
        r = runs[name]
        cmp = _compare(reference, r["doc"])
        verdict[name] = cmp
        scores = _scores(r["doc"])
        same = "reference" if name == "local" else (
            f"**{'all' if cmp['identical'] else 'NOT all'} {cmp['rows']:,}** identical ({cmp['per_model_rows']:,} "
            f"per-model rows of {cmp['models']:,} models; {cmp['differing']} differ, max |diff| {cmp['max_abs_diff']:.3g})")
        lines.append(
            f"| {name} | {label} | {r['wall']:.1f} | {_overhead(_split(r['doc']), r['wall'], r['startup'])} | {same} | "
            f"{'-' if name == 'local' else ('identical' if cmp['per_example_identical'] else 'DIFFERENT')} | "
            + " | ".join(f"{scores[m][0]:.4f} / {scores[m][1]:.4f}" for m in methods) + " |"
        )
    ref = _scores(reference)
    lines.append("")
    lines.append("Reference rows (same in every run): " + ", ".join(
        f"retrain split-half {ref['retrain'][0]:.4f} / {ref['retrain'][1]:.4f}" if m == "retrain" else
        f"original {ref[m][0]:.4f} / {ref[m][1]:.4f}" for m in ("retrain", "original") if m in ref) + " (F / score).")
    if "address" in runs:
        lines += ["", "Second-process command: `" + " ".join(
            Path(c).name if i == 0 else ("HOST:PORT" if c == runs["address"]["cmd"][i] and runs["address"]["cmd"][i - 1] == "--address" else c)
            for i, c in enumerate(runs["address"]["cmd"]) if not c.startswith("/tmp/")).replace("--out", "--out DIR") + "`."]
    return lines, verdict


# ---------------------------------------------------------------- part 2: ResNet-18 / CIFAR-10 on paper


def resnet_flops(batch: int = 8) -> tuple[float, float]:
    """Forward and forward+backward FLOPs per example of ResNet-18 (CIFAR stem) at 3x32x32, 10 classes."""
    model = ResNet18((3, 32, 32), 10)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    with FlopCounterMode(display=False) as fwd:
        out = model(x)
    with FlopCounterMode(display=False) as both:
        F.cross_entropy(model(x), y).backward()
    del out
    return fwd.get_total_flops() / batch, both.get_total_flops() / batch


def resnet_cpu_rate(batch: int = 32, steps: int = 3) -> float:
    """Measured training examples per second of ResNet-18 at 32x32 here (SGD step, this process's threads)."""
    model = ResNet18((3, 32, 32), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    best = math.inf
    for i in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i:  # the first step warms up allocations
            best = min(best, time.perf_counter() - t0)
    return batch / best


EPS_EXAMPLES = 200


def epsilon_seconds(examples: int, models: int = 512) -> float:
    """Seconds of the challenge's per-example epsilons for ``examples`` forget examples (synthetic confidences)."""
    rng = np.random.default_rng(0)
    unlearned, retrained = rng.normal(size=(models, EPS_EXAMPLES)), rng.normal(0.3, 1.2, size=(models, EPS_EXAMPLES))
    start = time.perf_counter()
    nips_epsilons(unlearned, retrained)
    return (time.perf_counter() - start) * examples / EPS_EXAMPLES


def part2(args) -> list[str]:
    fwd, train = resnet_flops()
    rate = resnet_cpu_rate()
    cpu_flops = rate * train
    n_train, n_test, forget_frac, models = 50_000, 10_000, 0.10, 512
    n_retain, n_forget = int(n_train * (1 - forget_frac)), int(n_train * forget_frac)
    eps_seconds = epsilon_seconds(n_forget, models)
    # GPU throughput: dense bf16 tensor-core peaks (vendor data sheets, without sparsity) x utilisation
    a100, h100 = 312e12, 989e12
    util, low = args.utilisation, args.low_utilisation
    recipes = {
        f"{args.epochs_short} epochs (short; obliviate's digits recipe length)": args.epochs_short,
        f"{args.epochs_long} epochs (the unlearning literature's CIFAR-10 ResNet-18, e.g. SalUn / Sparse)": args.epochs_long,
    }
    rows, metric_share = [], []
    for label, epochs in recipes.items():
        original = train * n_train * epochs
        retrained = models * train * n_retain * epochs
        unlearn = models * args.unlearn_budget * train * n_retain * epochs  # the challenge's cap: 20% of retraining
        # the metric: one forward pass of every unlearned and retrained model over forget + retain + test for
        # the accuracies and the per-example confidences; the epsilons themselves are CPU work on 1024 x n_forget numbers
        metric = 2 * models * fwd * (n_train + n_test)
        total = original + retrained + unlearn + metric
        method_only = unlearn + models * fwd * (n_train + n_test)  # retrained side reused across methods
        metric_share.append(metric / total)

        def hours(flops: float, peak: float, u: float) -> float:
            return flops / (peak * u) / 3600

        rows.append("| " + " | ".join([
            label, f"{original / 1e15:.1f}", f"{retrained / 1e18:.2f}", f"{unlearn / 1e18:.2f}", f"{metric / 1e15:.0f}",
            f"{total / 1e18:.2f}", f"{hours(total, a100, util):,.1f}", f"{hours(total, h100, util):,.1f}",
            f"{hours(total, h100, low):,.1f}", f"{hours(total, h100, util) / 8:,.2f} / {hours(total, h100, low) / 8:,.2f}",
            f"{hours(method_only, h100, util) / 8:,.2f} / {hours(method_only, h100, low) / 8:,.2f}",
            f"{total / cpu_flops / 3600 / 24 / 365:,.1f}",
        ]) + " |")
    per_model_h100 = train * n_retain * args.epochs_short / (h100 * util)
    epoch = train * n_train
    short_metric, long_metric = metric_share
    return [
        f"Measured here: ResNet-18 (CIFAR stem, `obliviate.models.resnet.ResNet18`, 11.2 M weights) at 3x32x32 costs "
        f"**{fwd / 1e9:.3f} GFLOP forward** and **{train / 1e9:.3f} GFLOP forward + backward per example** "
        f"(`FlopCounterMode`, batch 8; multiply-add = 2 FLOPs; BatchNorm and the optimiser step are not counted, a few %). "
        f"This machine trains it at {rate:.0f} examples/s on {torch.get_num_threads()} thread(s) ({cpu_flops / 1e9:.1f} GFLOP/s, "
        "fp32, batch 32, best of 3 steps, loaded machine).",
        "",
        f"Assumed: CIFAR-10, 50,000 train / 10,000 test images, a {forget_frac:.0%} forget set ({n_forget:,} images; the "
        "challenge's was ~2%, which changes the retain set by 9%), one original, 512 unlearning runs at the challenge's cap "
        f"of {args.unlearn_budget:.0%} of retraining's compute (an upper bound: the leaders used a few epochs of "
        "fine-tuning), 512 retrained models on the retain set, the metric (one forward pass of the 1,024 models over "
        f"train + test). GPU throughput = dense bf16 tensor-core peak (A100 SXM 312, H100 SXM 989 TFLOP/s, no sparsity) x a "
        f"utilisation: **{util:.0%}** for a tuned trainer (data resident on the GPU, channels-last, mixed precision, several "
        "models per GPU: ResNet-18 at 32x32 has small convolutions, 64-512 channels on 32x32 down to 4x4 maps, which do "
        f"not fill a GPU alone) and **{low:.0%}** for a plain PyTorch DataLoader loop with one model per GPU. In epoch "
        f"time of one model on 50,000 images: A100 {epoch / (a100 * util):.1f} s at {util:.0%}, {epoch / (a100 * low):.1f} s "
        f"at {low:.0%}; H100 {epoch / (h100 * util):.1f} s / {epoch / (h100 * low):.1f} s (a plain A100 loop reading "
        "CIFAR through a DataLoader commonly takes longer still: below 10%). Both utilisations are stated assumptions, "
        "not measurements: no GPU here. CPU column: this machine's measured rate above, for scale.",
        "",
        "| recipe | original PFLOP | 512 retrained EFLOP | 512 unlearning (cap) EFLOP | metric PFLOP | total EFLOP | "
        f"A100 GPU-h at {util:.0%} | H100 GPU-h at {util:.0%} | H100 GPU-h at {low:.0%} | "
        f"H100 8-GPU node-hours at {util:.0%} / {low:.0%} | one more method, retrained side reused: node-hours | "
        "this CPU, 1 thread: years |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Layout on a cluster (the same code): `obliviate bench --seeds 512 --backend ray --address HEAD:PORT` makes "
        f"512 / {SEEDS_PER_TASK} = {512 // SEEDS_PER_TASK} tasks per scenario, each a stack of {SEEDS_PER_TASK} seeds "
        "(retrain, unlearn, evaluate); Ray places one task per worker slot (`num_cpus=1` per task today: on GPU nodes "
        "the task would need `num_gpus` and a smaller chunk, e.g. 8-16 seeds per task so that 64-128 tasks fill 8-16 "
        f"GPUs; not implemented here). One retrained model at the short recipe is {per_model_h100 / 60:.1f} H100-minutes "
        "at the stated utilisation; a GPU holds several such models at once (11.2 M weights, ~45 MB fp32 each, "
        "activations of a 128-image batch a few hundred MB), so 4-8 models per GPU keep it busy with one data pipeline. "
        "Data loading: CIFAR-10 is 184 MB as uint8 and fits in every GPU's memory, so each task keeps it on its GPU and "
        "draws seeded batches there (no per-epoch CPU decoding; random crop/flip on the GPU); the only traffic is the "
        "original's weights (~45 MB) and the task's results (per-model rows and 5,000 float64 forget confidences per "
        f"model: 40 kB a model, {SEEDS_PER_TASK * 4 * 40 / 1000:.0f} MB for a {SEEDS_PER_TASK}-seed task's four sides) through "
        f"Ray's object store. The metric is small: its forward passes are {short_metric:.1%} of the total at "
        f"{args.epochs_short} epochs and {long_metric:.1%} at {args.epochs_long}, "
        f"and the per-example epsilons (5,000 examples x 512 + 512 models) take about {eps_seconds / 60:.1f} CPU-minutes "
        f"(measured here: `nips_epsilons` on {EPS_EXAMPLES} synthetic examples x 512 + 512 models, 1 thread, scaled). "
        "So the evaluation is dominated by the 512 retrained models and, at the cap, the unlearning: the retrained "
        "side can be trained once per forget set and reused by every method scored on it (the scoreboard does this), "
        "which leaves a method's own cost at the unlearning column.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=512)
    parser.add_argument("--methods", default="gradient_ascent,reset_distill")
    parser.add_argument("--full-seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the Ray clusters (one task per CPU)")
    parser.add_argument("--skip-address", action="store_true", help="skip the second-process --address run")
    parser.add_argument("--only", choices=("ray", "paper"))
    parser.add_argument("--epochs-short", type=int, default=30)
    parser.add_argument("--epochs-long", type=int, default=182)
    parser.add_argument("--unlearn-budget", type=float, default=0.2)
    parser.add_argument("--utilisation", type=float, default=0.35)
    parser.add_argument("--low-utilisation", type=float, default=0.10)
    parser.add_argument("--results-md", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    text = ["## Issue 16 item 4: the 512 + 512 evaluation split across Ray workers, and ResNet-18 / CIFAR-10 on a cluster", ""]
    if args.only != "paper":
        lines, verdict = part1(args)
        text += [f"### Local vs Ray: {args.seeds} models a side, methods {args.methods}, digits `{SCENARIO}`, challenge protocol", "",
                 f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_ray.py --seeds {args.seeds} --methods {args.methods}` "
                 f"(1 torch thread in the driver and in every Ray task; relearn time and MIA-Efficacy on the first "
                 f"{args.full_seeds} seeds, as `obliviate bench`).", "", *lines, ""]
        print(json.dumps(verdict, indent=1), flush=True)
    if args.only != "ray":
        text += ["### ResNet-18 on CIFAR-10 at the challenge's scale, on paper (from measured FLOPs)", "", *part2(args), ""]
    text.append(f"Whole script: {time.perf_counter() - start:.0f} s wall.")
    body = "\n".join(text)
    write_block("nips-ray", body, path=args.results_md)
    print(body)


if __name__ == "__main__":
    main()
