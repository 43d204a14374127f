"""Certified removal from the stored Hessian vs Guo et al.'s loop vs a fresh certified fit (issue 15).

On the certified-removal benchmark's synthetic set (``ob.data.synthetic(25_000, 32, 10, seed=0,
separation=0.5)``, 20,000 training points, lambda = 0.01, sigma = 1, delta = 1e-4), one BLAS/torch
thread for every side:

* a fresh certified fit (``fit_certified``) and a fresh stored-Hessian fit (the same plus M and G);
* Guo et al.'s removal loop (``CertifiedLogisticRegression.remove``: PCG on the remaining data)
  on the first ``--guo`` random points, one request each;
* the stored-Hessian removal (``StoredHessianLogisticRegression.remove``) on up to ``--removals``
  random points, one request each, recording the model's residual bound after each, so the number
  of removals before a retrain at every epsilon is read off one run (the steps do not depend on
  epsilon, only the budget sigma epsilon / c does); at checkpoints, the test accuracy of the removed
  model against a certified model retrained on the remaining data with fresh noise, the exact
  minimiser with the model's own noise, and the true gradient residual against the bound.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/certified_fast.py [--removals 1000] [--guo 60]

Prints a markdown block (the ``certified-fast`` results section).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import obliviate as ob
from obliviate.certified.logistic import fit_certified, fit_logistic, objective_gradient
from obliviate.certified.stored_hessian import fit_stored_hessian

EPSILONS = (0.1, 1.0, 10.0)
DELTA = 1e-4


def accuracy(model, test) -> float:
    with torch.no_grad():
        return float((model(test.tensors[0]).argmax(1).numpy() == test.y).mean()) * 100


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--removals", type=int, default=1000)
    parser.add_argument("--guo", type=int, default=60)
    parser.add_argument("--checks", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)
    start = time.perf_counter()
    train, test = ob.data.synthetic(25_000, 32, 10, seed=0, separation=0.5).split(test_size=0.2, seed=0)
    opts = dict(epsilon=max(EPSILONS), delta=DELTA, lam=0.01, sigma=1.0, seed=0, policy="refuse")
    fits = [timed(lambda: fit_certified(train, **opts))[1] for _ in range(3)]
    fast_fits = [timed(lambda: fit_stored_hessian(train, **opts))[1] for _ in range(3)]
    fit_s, fast_fit_s = float(np.median(fits)), float(np.median(fast_fits))
    order = train.sample_ids(args.removals, seed=1)

    guo = fit_certified(train, **opts)
    guo_times = []
    for i in order[: args.guo]:
        t = time.perf_counter()
        guo.remove([i])
        guo_times.append(time.perf_counter() - t)
    guo_s = float(np.median(guo_times))

    model = fit_stored_hessian(train, **opts)
    acc0 = accuracy(model, test)
    spent, times, checks = [model.spent], [], []
    every = max(args.removals // args.checks, 1)
    for r, i in enumerate(order, start=1):
        t = time.perf_counter()
        try:
            model.remove([i])
        except ob.errors.BudgetExhaustedError:
            break
        times.append(time.perf_counter() - t)
        spent.append(model.spent)
        if r in (1, 10, 50, 100) or r % every == 0:
            X, Y = model._arrays(model.active.numpy())
            W, _ = fit_logistic(X, Y, model.lam, model.b.numpy())
            with torch.no_grad():
                z = (model.embed(test.tensors[0]) @ torch.from_numpy(W)).numpy()
            same = float((z.argmax(1) == test.y).mean()) * 100
            fresh = fit_certified(train.subset(model.active_ids), **{**opts, "seed": 1000 + r})
            true = float(
                np.linalg.norm(objective_gradient(X, Y, model.weight.detach().numpy(), model.lam, model.b.numpy()))
            )
            checks.append((r, accuracy(model, test), accuracy(fresh, test), same, true, model.spent))
            print(checks[-1], file=sys.stderr, flush=True)
    spent = np.array(spent)
    fast_s = float(np.median(times))
    budgets = {eps: model.sigma * eps / model.c for eps in EPSILONS}
    counts = {eps: int(np.searchsorted(spent, b, side="right") - 1) for eps, b in budgets.items()}
    capped = len(times) == args.removals
    n1 = counts[1.0]
    within = [c for c in checks if c[0] <= max(n1, 1)]
    gap = max(abs(c[1] - c[2]) for c in within)
    gap_same = max(abs(c[1] - c[3]) for c in within)
    wall = time.perf_counter() - start
    speed_fit = fit_s / fast_s
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/certified_fast.py " + " ".join(sys.argv[1:])
    lines = [
        "<!-- certified-fast:begin -->",
        "## Certified removal from the stored Hessian (Sekhari et al. 2021 step, Guo et al. 2020 certificate), issue 15",
        "",
        f"Command: `{cmd.strip()}` (wall {wall:.0f} s; x86_64, 2 cores shared with other jobs, one BLAS/torch thread for",
        "every timing: indicative). Data: `ob.data.synthetic(25_000, 32, 10, seed=0, separation=0.5)`, 20,000 train /",
        "5,000 test, 10 one-vs-rest columns; lambda = 0.01, sigma = 1, delta = 1e-4 (c = "
        f"{model.c:.3f}), one point per request. Fresh fit = `fit_certified` (L-BFGS + Newton polish + the inverse",
        "Hessians Guo's loop preconditions with); Guo loop = `CertifiedLogisticRegression.remove` (PCG on the remaining",
        "data); stored = `StoredHessianLogisticRegression.remove` (downdate M and G, K Cholesky solves from w^, the",
        "O(d^2) bound).",
        "",
        "| | ms |",
        "|---|---|",
        f"| fresh certified fit (median of 3) | {fit_s * 1e3:.0f} |",
        f"| fresh stored-Hessian fit (fit + M, G; median of 3) | {fast_fit_s * 1e3:.0f} |",
        f"| Guo et al. loop, per removal (median of {len(guo_times)}) | {guo_s * 1e3:.2f} |",
        f"| stored Hessian, per removal (median of {len(times)}) | {fast_s * 1e3:.3f} |",
        "",
        f"Speed-up of a stored-Hessian removal: **{speed_fit:.0f}x** a fresh certified fit, {guo_s / fast_s:.0f}x Guo et al.'s loop.",
        "",
        "| removals | test acc % removed | retrained (fresh noise) | exact minimiser, same noise | true residual | bound (spent) |",
        "|---|---|---|---|---|---|",
        f"| 0 | {acc0:.2f} | | | | {spent[0]:.3g} |",
    ]
    for r, a, f, s, t, b in checks:
        lines.append(f"| {r} | {a:.2f} | {f:.2f} | {s:.2f} | {t:.3g} | {b:.3g} |")
    cnt = " / ".join(f"{counts[e]}" + ("+" if capped and counts[e] >= len(times) else "") for e in EPSILONS)
    lines += [
        "",
        f"Removals before a retrain at epsilon = 0.1 / 1 / 10: {cnt} (budgets "
        + ", ".join(f"{budgets[e]:.3g}" for e in EPSILONS)
        + "; '+' = the run's cap). The benchmark `certified_removal.py` block reports 22 / 216 / 1200+ for Guo et al.'s"
        " sequential loop on the same data: here the bound is that of one Newton step removing the whole set from w^,"
        " not a sum of per-step bounds.",
        "",
        f"Targets: >= 100x faster than a fresh certified fit: {speed_fit:.0f}x ({'met' if speed_fit >= 100 else 'NOT met'});"
        f" accuracy within 0.5 points of retraining up to the epsilon = 1 budget: max |gap| {gap:.2f} points against a"
        f" fresh-noise retrain ({'met' if gap <= 0.5 else 'NOT met'}), {gap_same:.2f} against the same-noise minimiser;"
        f" >= 100 removals at epsilon = 1: {n1} ({'met' if n1 >= 100 else 'NOT met'}). True gradient residual <= bound at"
        f" {sum(c[4] <= c[5] for c in checks)} of {len(checks)} checkpoints (the property test checks it after each of 100"
        " removals on small data); the bound is 20-60x the true residual here, the price of Corollary 1's worst case.",
        "<!-- certified-fast:end -->",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
