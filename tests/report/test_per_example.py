"""The report's per-example view: the epsilon heatmap, the worst examples, one example's confidences."""

from __future__ import annotations

import re

import numpy as np
from test_report import make_results

from obliviate.report import render_report
from obliviate.report.plots import confidence_histogram, epsilon_chart, epsilon_limit

PNG = b"\x89PNG"


def _view():
    rng = np.random.default_rng(0)
    ids = [101, 7, 55]

    def method(eps, worst_id):
        return {
            "num_models": 512,
            "epsilons": eps,
            "ulira_accuracy": [0.5, 0.75, 0.6],
            "worst": [{"id": worst_id, "epsilon": max(eps), "unlearned_median": 2.5, "retrained_median": 1.25}],
            "example": {"id": worst_id, "unlearned": rng.normal(2.5, 1, 512).tolist(),
                        "retrained": rng.normal(1.25, 1, 512).tolist()},
        }

    return {"forget_ids": ids, "num_models": 512,
            "methods": {"scrub": method([0.2, 3.75, 1.0], 7), "finetune": method([6.0, 0.1, 0.4], 101)}}


def test_epsilon_limit_and_figures_render():
    assert epsilon_limit(512) == 7.0 and epsilon_limit(10) == 3.0
    assert epsilon_chart([("a", [0.0, 0.7, 9.0]), ("b", [0.2])], 10).startswith(PNG)
    assert epsilon_chart([("a", [])], 10) is None
    assert confidence_histogram({"id": 3, "unlearned": [0.0, 1.0, 2.0], "retrained": [1.0, 2.0]}, "scrub").startswith(PNG)
    assert confidence_histogram({"id": 3, "unlearned": [1.0], "retrained": [1.0]}, "scrub") is None


def test_the_page_shows_worst_examples_and_the_best_methods_example():
    results = make_results()
    results["per_example"] = {"random-10pct": _view()}
    page = render_report(results)
    section = page[page.index('class="per-example"'):]
    section = section[: section.index("</section>")]
    assert "Per forget example" in section
    # scrub has the higher NeurIPS score in make_results: its worst example is the one drawn
    assert "Confidences on forget example 7" in section and "The worst forget example of scrub" in section
    # worst-example rows: id, epsilon, medians, and U-LiRA's accuracy on that example (id 7 is position 1: 75%)
    assert re.search(r"<td>7</td><td>3\.75</td><td>2\.50</td><td>1\.25</td><td>75\.0</td>", section)
    assert len(re.findall(r"<img ", section)) == 2
    # the other scenario has no per-example data: no section there
    assert page.count('class="per-example"') == 1


def test_no_per_example_data_no_section():
    assert 'class="per-example"' not in render_report(make_results())


def test_language_model_results_get_the_lm_leaderboard_and_tofu_plot():
    rows = [
        {"scenario": "forget01", "method": m, "seed": 0, "metric": k, "value": v}
        for m, fq, mu in (("retrain", 1.0, 0.5), ("original", 1e-4, 0.55), ("npo", 0.2, 0.45))
        for k, v in (("forget_quality", fq), ("model_utility", mu))
    ]
    page = render_report({"schema": "obliviate.results/1", "suite": "authors", "kind": "lm", "config": {}, "rows": rows})
    assert "retain model</span>" in page and "Forget quality against model utility" in page
    assert "<td>2.00e-01</td><td>0.450</td>" in page  # npo: forget quality (scientific), model utility
    assert 'class="per-example"' not in page
