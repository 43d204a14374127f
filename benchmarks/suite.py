"""Any bench suite against its retrained oracle, as a RESULTS.md block (``suite-<name>``).

    .venv/bin/python benchmarks/suite.py --suite certified
    .venv/bin/python benchmarks/suite.py --suite d2d
    .venv/bin/python benchmarks/suite.py --suite digits-dp

Runs ``obliviate bench``'s runner on the suite, writes its report under runs/bench-<name>/, and
prints and stores the leaderboard of each scenario (the digits suite has its own script with the
issue-2 targets: benchmarks/digits.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from digits import scenario_table
from results_md import write_block

from obliviate.bench import get_suite, run_suite, write_results
from obliviate.report import leaderboard, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--no-results-md", action="store_true")
    args = parser.parse_args()
    suite = get_suite(args.suite)
    start = time.perf_counter()
    results = run_suite(suite, seeds=args.seeds)
    wall = time.perf_counter() - start
    out = Path("runs") / f"bench-{suite.name}"
    write_results(results, out)
    write_report(results, out)
    seeds = results["config"]["seeds"]
    command = f"`.venv/bin/python benchmarks/suite.py --suite {suite.name}" + (f" --seeds {args.seeds}`" if args.seeds else "`")
    lines = [
        f"## Suite `{suite.name}`: {suite.description}",
        "",
        f"Command: {command} (wall {wall:.0f} s; {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
        f"{seeds} seeds per scenario). Methods: {', '.join(suite.methods)}. Accuracies in %, gaps in points against "
        "the oracle (the same recipe retrained on the retained data); time is the median per-seed ratio to retraining.",
        "",
    ]
    for name, description in results["config"]["scenarios"].items():
        lines += [f"### {name}: {description}", "", *scenario_table(leaderboard(results, name)), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_results_md:
        write_block(f"suite-{suite.name}", text)


if __name__ == "__main__":
    main()
