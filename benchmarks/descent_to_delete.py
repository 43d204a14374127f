"""Descent-to-Delete on digits and on a 20,000-point synthetic set: accuracy and noise over 100 sequential deletions, time against retraining.

Each part is one run: train the D2D softmax logistic model on the training split, delete random
training points one request at a time (1..N), and after each record the published model's test
accuracy, the un-noised state's, and sigma. At checkpoints it retrains from scratch on the remaining
data two ways: the paper's algorithm A (projected GD for T_0 steps plus the same noise: the model D2D
is certified against) and an exact L-BFGS solve of the same objective (scikit-learn), timing both.
The digits part uses the digits split (1,347 train); the synthetic part uses
``ob.data.synthetic(25_000, 32, 10, seed=0).split(test_size=0.2, seed=0)`` (20,000 train, 5,000 test)
with fewer checkpoints and a smaller T so the whole script stays within a few minutes on 2 cores.
It prints a markdown section, writes it between the ``descent-to-delete`` markers of
benchmarks/RESULTS.md (``--only`` keeps the other part's section as it is there), and saves
benchmarks/plots/d2d_requests.png (digits) and benchmarks/plots/d2d_synthetic.png (synthetic).

    .venv/bin/python benchmarks/descent_to_delete.py [--only digits|synthetic]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

import obliviate as ob
from obliviate.certified.descent_to_delete import (
    d2d_sigma,
    initial_iterations,
    iterations_for_sigma,
    train_descent_to_delete,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from results_md import write_block

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- descent-to-delete:begin -->", "<!-- descent-to-delete:end -->"
CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100)
SYNTHETIC_CHECKPOINTS = (1, 10, 50, 100)
DIGITS_HEAD = "## Descent-to-Delete on digits"
SYNTHETIC_HEAD = "## Descent-to-Delete on synthetic"
DIGITS_TRAIN = 1347  # digits().split(test_size=0.25, seed=0)


def accuracy(model: torch.nn.Module, data: ob.data.Dataset) -> float:
    with torch.no_grad():
        return float((model(torch.as_tensor(data.X)).argmax(1).numpy() == data.y).mean())


def mean_noised_accuracy(model, data: ob.data.Dataset, sigma: float, draws: int, seed: int) -> float:
    """Mean test accuracy of ``secret + N(0, sigma^2 I)`` over ``draws`` seeded noise draws: the
    published model's expected accuracy, not one draw's."""
    g = torch.Generator().manual_seed(seed)
    probe = model.secret_model()
    accs = []
    for _ in range(draws):
        with torch.no_grad():
            probe.weight.copy_((model.secret + sigma * torch.randn(model.secret.shape, generator=g, dtype=torch.float64)).float())
        accs.append(accuracy(probe, data))
    return float(np.mean(accs))


def exact_fit(model, data: ob.data.Dataset) -> tuple[np.ndarray, float]:
    """The minimiser of the same objective by L-BFGS (scikit-learn), and its wall time.

    One BLAS thread, like the GD steps: on the 2 shared cores the default threading oversubscribes and
    made the refit up to 80x slower and erratic, which would flatter D2D."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        start = time.perf_counter()
        phi = model.features(torch.as_tensor(data.X, dtype=torch.float64)).numpy()
        fit = LogisticRegression(C=1.0 / (model.lam * len(data)), fit_intercept=False, tol=1e-8, max_iter=5000)
        fit.fit(phi, data.y)
        return fit.coef_, time.perf_counter() - start


def sequential(train, test, *, settings: dict, deletions: int, checkpoints, draws: int, seed: int) -> dict:
    """Train with algorithm A, delete ``deletions`` random training points one request at a time, and at
    the checkpoints retrain two ways (algorithm A with noise, exact L-BFGS) on the remaining data."""
    iterations, epsilon, delta = settings["iterations"], settings["epsilon"], settings["delta"]
    start = time.perf_counter()
    model = train_descent_to_delete(train, seed=seed, **settings)
    train_seconds = time.perf_counter() - start
    c = model.constants
    order = np.random.default_rng(seed).permutation(train.sample_ids(deletions, seed=seed))

    rows, checks = [], []
    current = model
    for k, fid in enumerate(order, start=1):
        result = ob.unlearn(current, [int(fid)], train, method="descent_to_delete",
                            settings={"epsilon": epsilon, "delta": delta}, seed=seed)
        current = result.model
        rows.append(dict(k=k, seconds=result.cost.seconds, sigma=current.sigma,
                         acc=accuracy(current, test), secret_acc=accuracy(current.secret_model(), test)))
        if k in checkpoints or k == deletions:
            remaining = train.without(order[:k])
            start = time.perf_counter()
            ref = train_descent_to_delete(remaining, seed=seed + k, **settings)
            ref_seconds = time.perf_counter() - start
            W_exact, exact_seconds = exact_fit(model, remaining)
            exact_model = current.secret_model()
            with torch.no_grad():
                exact_model.weight.copy_(torch.as_tensor(W_exact, dtype=torch.float32))
            dist = float(np.linalg.norm(current.secret.numpy() - W_exact))
            bound = 2 * c.L * c.gamma**iterations / (c.m * current.n_min * (1 - c.gamma**iterations))
            checks.append(dict(k=k, ref_acc=accuracy(ref, test),
                               d2d_mean=mean_noised_accuracy(current, test, current.sigma, draws, 1 + k),
                               ref_mean=mean_noised_accuracy(ref, test, ref.sigma, draws, 10_000 + k), ref_secret_acc=accuracy(ref.secret_model(), test),
                               exact_acc=accuracy(exact_model, test), ref_seconds=ref_seconds,
                               exact_seconds=exact_seconds, dist=dist, bound=bound, ref_steps=ref.training_steps))
    by_k = {r["k"]: r for r in rows}
    return dict(
        model=model, final=current, rows=rows, checks=checks, by_k=by_k, train_seconds=train_seconds, c=c,
        per_delete=float(np.mean([r["seconds"] for r in rows])),
        ref_time=float(np.mean([ch["ref_seconds"] for ch in checks])),
        exact_time=float(np.mean([ch["exact_seconds"] for ch in checks])),
        gaps=[100 * (ch["d2d_mean"] - ch["ref_mean"]) for ch in checks],
        gaps_exact=[100 * (by_k[ch["k"]]["acc"] - ch["exact_acc"]) for ch in checks],
    )


def plot_run(run: dict, path: Path, *, name: str, lam: float, iterations: int, epsilon: float, delta: float,
             deletions: int, draws: int, n0: int) -> None:
    rows, checks, c = run["rows"], run["checks"], run["c"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ks = [r["k"] for r in rows]
    ax1.plot(ks, [100 * r["acc"] for r in rows], label="D2D published", color="C0")
    ax1.plot(ks, [100 * r["secret_acc"] for r in rows], label="D2D un-noised state", color="C0", ls=":")
    ax1.plot([ch["k"] for ch in checks], [100 * ch["ref_acc"] for ch in checks], "s", label="retrained (algorithm A, noised)", color="C1")
    ax1.plot([ch["k"] for ch in checks], [100 * ch["exact_acc"] for ch in checks], "x", label="exact minimiser (L-BFGS)", color="C2")
    cks = [ch["k"] for ch in checks]
    ax1.plot(cks, [100 * ch["d2d_mean"] for ch in checks], "o-", label=f"D2D published, mean of {draws} draws", color="C3")
    ax1.plot(cks, [100 * ch["ref_mean"] for ch in checks], "s--", label=f"retrained A, mean of {draws} draws", color="C4", mfc="none")
    ax1.set_xscale("log")
    ax1.set_xlabel("sequential deletion requests")
    ax1.set_ylabel("test accuracy %")
    ax1.set_title(f"{name}, lam={lam:g}, T={iterations}, eps={epsilon:g}, delta={delta:g}")
    ax1.legend(fontsize=8)
    kk = np.arange(0, deletions + 1)
    for eps in (0.1, 1.0, 10.0):
        ax2.plot(kk, [d2d_sigma(iterations, n0 - k, eps, delta, c) for k in kk], label=f"sigma, eps={eps:g}")
    ax2.plot(ks, [r["sigma"] for r in rows], "k.", ms=3, label="sigma used (run)")
    ax2.set_yscale("log")
    ax2.set_xlabel("sequential deletion requests")
    ax2.set_ylabel("noise sigma")
    ax2.set_title(f"sigma(T={iterations}, n = {n0} - requests)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared, torch {torch.__version__}, 1 thread"


def digits_section(args) -> list[str]:
    wall0 = time.perf_counter()
    train, test = ob.data.digits().split(test_size=0.25, seed=0)
    settings = dict(lam=args.lam, iterations=args.iterations, epsilon=args.epsilon, delta=args.delta)
    run = sequential(train, test, settings=settings, deletions=args.deletions, checkpoints=CHECKPOINTS,
                     draws=args.draws, seed=args.seed)
    c = run["c"]
    per_delete, ref_time, exact_time = run["per_delete"], run["ref_time"], run["exact_time"]
    gaps = run["gaps"]
    n0 = len(train)
    plot_run(run, HERE / "plots" / "d2d_requests.png", name="digits", lam=args.lam, iterations=args.iterations,
             epsilon=args.epsilon, delta=args.delta, deletions=args.deletions, draws=args.draws, n0=n0)

    T0 = initial_iterations(args.iterations, n0, c)
    within = max(abs(g) for g in gaps)
    lines = [
        f"{DIGITS_HEAD}: sequential deletions (issue 4, part 2)",
        "",
        f"Command: {command(args)} (digits part wall {time.perf_counter() - wall0:.0f} s; {machine()}). "
        "Digits split 1,347 train / 450 test; "
        f"softmax L2 logistic regression on unit-norm rows plus bias, lam = {args.lam:g} "
        f"(m = {c.m:g}, M = {c.M:g}, L = {c.L:.3f}, ball radius R = {c.radius:.1f}, gamma = {c.gamma:.5f}); "
        f"T = {args.iterations} GD steps per deletion, training T_0 = {T0}; epsilon = {args.epsilon:g}, delta = {args.delta:g}. "
        f"{args.deletions} random training points deleted one request at a time. 'Retrained' is the paper's algorithm A "
        "from scratch on the remaining data (T_0 projected GD steps + the same noise: the model D2D is certified "
        "against); 'exact' is the L-BFGS minimiser of the same objective (scikit-learn, tol 1e-8, 1 BLAS thread). Times are wall "
        "seconds on a shared machine: indicative. 'Mean over draws' re-draws the published noise (seeded) around "
        "the same un-noised state: the expected accuracy of the published model, which one draw on 450 test points "
        "(1 point = 4.5 examples) measures poorly.",
        "",
        *check_table(run, args.draws),
        "",
        f"Time per deletion: {per_delete:.3f} s ({args.iterations} full-batch GD steps) against {ref_time:.3f} s to retrain "
        f"with algorithm A ({T0}+ steps): **{ref_time / per_delete:.2f}x faster**; against the exact L-BFGS refit "
        f"({exact_time:.3f} s): **{exact_time / per_delete:.2f}x** (below 1 means slower). Training took {run['train_seconds']:.3f} s.",
        "",
        "Noise as requests grow: sigma depends on the smallest data size n seen, so at fixed T it grows as 1/n "
        f"(from {d2d_sigma(args.iterations, n0, args.epsilon, args.delta, c):.4f} at n = {n0} to "
        f"{d2d_sigma(args.iterations, n0 - args.deletions, args.epsilon, args.delta, c):.4f} after {args.deletions} "
        "deletions), not with the number of requests itself: each published model is certified on its own, no "
        "composition across requests.",
        "",
        *sigma_table(args.iterations, n0, args.deletions, args.delta, c),
        "",
        f"Issue 4 targets: test accuracy within 0.5 points of the retrained model -> max |mean gap to A| = {within:.2f} points "
        f"({'met' if within <= 0.5 else 'not met'}); at least 100x faster than retraining per removal -> "
        f"{ref_time / per_delete:.1f}x against A ({'met' if ref_time / per_delete >= 100 else 'not met'}). "
        "D2D's per-deletion cost is T steps against T + log(D m n / 2L) / log(1/gamma) for A, so with the "
        "worst-case constants (condition number M/m = %.0f) the saving is the log term only; it grows with n."
        % (c.M / c.m),
        "",
        "Plot: `benchmarks/plots/d2d_requests.png` (test accuracy and sigma against the number of requests).",
    ]
    return lines


def check_table(run: dict, draws: int) -> list[str]:
    lines = [
        f"| requests | sigma | D2D test acc % (this draw) | D2D mean over {draws} draws % | un-noised % | retrained A % (this draw) "
        f"| A mean over {draws} draws % | exact % | mean gap to A (pts) | gap to exact (pts) | \\|W' - W*\\| | bound 2L g^T/(m n (1-g^T)) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ch, gap, gapx in zip(run["checks"], run["gaps"], run["gaps_exact"], strict=True):
        r = run["by_k"][ch["k"]]
        lines.append(
            f"| {ch['k']} | {r['sigma']:.4f} | {100 * r['acc']:.1f} | {100 * ch['d2d_mean']:.2f} | {100 * r['secret_acc']:.1f} | "
            f"{100 * ch['ref_acc']:.1f} | {100 * ch['ref_mean']:.2f} | "
            f"{100 * ch['exact_acc']:.1f} | {gap:+.2f} | {gapx:+.1f} | {ch['dist']:.2e} | {ch['bound']:.2e} |"
        )
    return lines


def sigma_table(iterations: int, n0: int, deletions: int, delta: float, c) -> list[str]:
    lines = [
        f"| epsilon | sigma at n = {n0} | sigma after {deletions} deletions | T for sigma <= 0.01 at n = {n0 - deletions} |",
        "|---|---|---|---|",
    ]
    for eps in (0.1, 1.0, 10.0):
        lines.append(
            f"| {eps:g} | {d2d_sigma(iterations, n0, eps, delta, c):.4g} | "
            f"{d2d_sigma(iterations, n0 - deletions, eps, delta, c):.4g} | "
            f"{iterations_for_sigma(0.01, n0 - deletions, eps, delta, c)} |"
        )
    return lines


def synthetic_section(args) -> list[str]:
    wall0 = time.perf_counter()
    data = ob.data.synthetic(25_000, 32, 10, seed=0, separation=args.separation)
    train, test = data.split(test_size=0.2, seed=0)
    T = args.synthetic_iterations
    settings = dict(lam=args.lam, iterations=T, epsilon=args.epsilon, delta=args.delta)
    run = sequential(train, test, settings=settings, deletions=args.deletions, checkpoints=SYNTHETIC_CHECKPOINTS,
                     draws=args.draws, seed=args.seed)
    c = run["c"]
    per_delete, ref_time, exact_time = run["per_delete"], run["ref_time"], run["exact_time"]
    n0, nk = len(train), len(train) - args.deletions
    plot_run(run, HERE / "plots" / "d2d_synthetic.png", name=f"synthetic n={n0}", lam=args.lam, iterations=T,
             epsilon=args.epsilon, delta=args.delta, deletions=args.deletions, draws=args.draws, n0=n0)
    T0 = initial_iterations(T, n0, c)
    extra = T0 - T
    within = max(abs(g) for g in run["gaps"])
    speed = ref_time / per_delete
    # What a 100x step saving would need: T_0 / T >= 100 at this n, i.e. T <= extra / 99 steps, and the
    # noise that T certifies; its expected accuracy around the final un-noised state (seeded draws).
    t100 = max(1, extra // 99)
    sigma100 = d2d_sigma(t100, nk, args.epsilon, args.delta, c)
    acc100 = mean_noised_accuracy(run["final"], test, sigma100, args.draws, 777)
    t_same = iterations_for_sigma(d2d_sigma(args.iterations, DIGITS_TRAIN - args.deletions, args.epsilon, args.delta, c),
                                  nk, args.epsilon, args.delta, c)
    sep = "" if args.separation == 1.5 else f", separation={args.separation:g}"
    top = max(100 * ch["exact_acc"] for ch in run["checks"])
    low = min(100 * ch["d2d_mean"] for ch in run["checks"])
    lines = [
        f"{SYNTHETIC_HEAD} (20,000 training points): sequential deletions (issue 4, part 2)",
        "",
        f"Command: {command(args)} (synthetic part wall {time.perf_counter() - wall0:.0f} s; {machine()}). "
        f"`ob.data.synthetic(25_000, 32, 10, seed=0{sep}).split(test_size=0.2, seed=0)`: {n0:,} train / {len(test):,} test, "
        f"32 features, 10 classes; the same model and constants as the digits part (lam = {args.lam:g}, gamma = {c.gamma:.5f}, "
        f"L = {c.L:.3f}, R = {c.radius:.1f}), epsilon = {args.epsilon:g}, delta = {args.delta:g}. "
        f"**T = {T}** GD steps per deletion (not the digits part's {args.iterations}): one full-batch step on 20,000 rows "
        f"takes about {1000 * per_delete / T:.1f} ms here, so T = {args.iterations} would make the 100 deletions alone take "
        f"about {per_delete / T * args.iterations * args.deletions / 60:.0f} minutes; T = {T} keeps the script within "
        f"a few minutes. Training T_0 = {T0}. {args.deletions} random training points deleted one request at a time; "
        f"checkpoints reduced to {', '.join(str(ch['k']) for ch in run['checks'])} (each retrains A and refits L-BFGS); "
        f"means over {args.draws} seeded noise draws, as in the digits part. Same baselines: algorithm A from scratch "
        "(T_0 steps + the same noise) and the L-BFGS minimiser (scikit-learn, tol 1e-8, 1 BLAS thread like the GD: the "
        "default 2 threads oversubscribe the shared cores and ran erratically, up to 80x slower, which would flatter D2D).",
        "",
        *check_table(run, args.draws),
        "",
        f"Time per deletion: {per_delete:.3f} s ({T} full-batch GD steps on ~{n0:,} rows) against {ref_time:.3f} s to "
        f"retrain with algorithm A ({T0} steps): **{speed:.2f}x faster**; against the exact L-BFGS refit "
        f"({exact_time:.3f} s): **{exact_time / per_delete:.2f}x** (below 1 means slower). Training took {run['train_seconds']:.3f} s.",
        "",
        f"Noise as requests grow: sigma grows as 1/n at fixed T, from {d2d_sigma(T, n0, args.epsilon, args.delta, c):.4f} "
        f"at n = {n0:,} to {d2d_sigma(T, nk, args.epsilon, args.delta, c):.4f} after {args.deletions} deletions (+"
        f"{100 * (n0 / nk - 1):.1f}%, against +{100 * (DIGITS_TRAIN / (DIGITS_TRAIN - args.deletions) - 1):.1f}% on digits): with 15x more "
        f"data, 100 deletions barely move it. The same noise as the digits run (sigma "
        f"{d2d_sigma(args.iterations, DIGITS_TRAIN - args.deletions, args.epsilon, args.delta, c):.4f} at T = {args.iterations}) "
        f"would need T = {t_same} here.",
        "",
        *sigma_table(T, n0, args.deletions, args.delta, c),
        "",
        f"Issue 4 targets on this set: test accuracy within 0.5 points of the retrained model -> max |mean gap to A| = "
        f"{within:.2f} points ({'met' if within <= 0.5 else 'not met'})"
        + (f", but with separation {args.separation:g} the mixture is nearly separable for this model (exact minimiser "
           f"{top:.1f}% test accuracy; D2D's expected published accuracy at sigma = "
           f"{d2d_sigma(T, nk, args.epsilon, args.delta, c):.3g} is {low:.2f}%), so this target says little here; "
           "`--separation 0.5` (the certified-removal bench's setting) gives a harder set"
           if top >= 99.5 else "")
        + f"; at least 100x faster than retraining per removal -> {speed:.1f}x against A "
        f"({'met' if speed >= 100 else 'not met'}) and {exact_time / per_delete:.2f}x against L-BFGS. Why not: a deletion "
        f"costs T steps and retraining T + log(D m n / 2L) / log(1/gamma) = T + {extra} steps at n = {n0:,}, so the "
        f"step ratio is 1 + {extra}/T whatever the hardware; the log term grew only from "
        f"{initial_iterations(args.iterations, DIGITS_TRAIN, c) - args.iterations} (digits) to {extra} steps with 15x more data. "
        f"A 100x step saving needs T <= {t100}, where epsilon = {args.epsilon:g} costs sigma = {sigma100:.3g} and the "
        f"published model's expected test accuracy (around the final un-noised state, {args.draws} draws) falls to "
        f"{100 * acc100:.1f}%. In general the step ratio is 1 + log(D m n / 2L) / log(1 + 1/q) with "
        "q = sigma m n (sqrt(log(1/delta) + epsilon) - sqrt(log(1/delta))) / (4 sqrt(2) L): n, lam and the privacy "
        f"level enter only through logarithms, so 100x needs q >= {1 / math.expm1(math.log(c.diameter * c.m * n0 / (2 * c.L)) / 99):.1f}, "
        "a noise level that swamps the model, for any reasonable lam or n. A wall-clock 100x would need a "
        "slower retraining baseline than the paper's A; against the exact L-BFGS refit (a better solver for the "
        f"same objective) a deletion is {exact_time / per_delete:.2f}x as fast"
        + (", i.e. slower than retraining." if exact_time < per_delete else "."),
        "",
        "Plot: `benchmarks/plots/d2d_synthetic.png` (test accuracy and sigma against the number of requests).",
    ]
    return lines


def command(args) -> str:
    default = (args.deletions, args.lam, args.iterations, args.synthetic_iterations, args.separation, args.epsilon,
               args.delta, args.seed, args.draws) == (100, 3e-3, 1200, 300, 1.5, 1.0, 1e-5, 0, 50)
    opts = "" if default else (
        f" --deletions {args.deletions} --lam {args.lam:g} --iterations {args.iterations} "
        f"--synthetic-iterations {args.synthetic_iterations} --separation {args.separation:g} --epsilon {args.epsilon:g} "
        f"--delta {args.delta:g} --seed {args.seed} --draws {args.draws}")
    only = f" --only {args.only}" if args.only else ""
    return f"`.venv/bin/python benchmarks/descent_to_delete.py{only}{opts}`"


def kept_section(head: str) -> list[str]:
    """The section starting with ``head`` in the current block of RESULTS.md (kept under ``--only``)."""
    from results_md import RESULTS

    if not RESULTS.exists():
        return []
    text = RESULTS.read_text()
    if BEGIN not in text or END not in text:
        return []
    body = "\n" + text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    for part in body.split("\n## ")[1:]:
        if ("## " + part).startswith(head):
            return ("## " + part).strip().splitlines()
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("digits", "synthetic"), default=None, help="run one part (RESULTS.md keeps the other's section)")
    parser.add_argument("--deletions", type=int, default=100)
    parser.add_argument("--lam", type=float, default=3e-3)
    parser.add_argument("--iterations", type=int, default=1200, help="T on digits")
    parser.add_argument("--synthetic-iterations", type=int, default=300, help="T on the synthetic set")
    parser.add_argument("--separation", type=float, default=1.5, help="ob.data.synthetic's class separation")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=50, help="noise draws for the expected published accuracy")
    parser.add_argument("--no-results-md", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    digits = digits_section(args) if args.only != "synthetic" else kept_section(DIGITS_HEAD)
    synthetic = synthetic_section(args) if args.only != "digits" else kept_section(SYNTHETIC_HEAD)
    lines = [BEGIN, *digits]
    if synthetic:
        lines += ["", *synthetic]
    lines.append(END)
    text = "\n".join(lines)
    print(text)
    if not args.no_results_md:
        write_block("descent-to-delete", text)


if __name__ == "__main__":
    main()
