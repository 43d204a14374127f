"""Benchmarks: suites of data, recipe, scenarios and methods; the runner; the results document."""

from obliviate.bench.results import SCHEMA, read_results, write_results
from obliviate.bench.runner import run_suite
from obliviate.bench.suites import SUITES, Scenario, Suite, get_suite

__all__ = ["SCHEMA", "SUITES", "Scenario", "Suite", "get_suite", "read_results", "run_suite", "write_results"]
