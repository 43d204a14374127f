"""Scores over all seeds of a scenario: the NeurIPS 2023 metric, U-LiRA and the per-example view.

Both bench engines (the per-seed loop in :mod:`obliviate.bench.runner` and the stacked one in
:mod:`obliviate.bench.challenge`) hand their per-seed forget-set confidences and accuracies to
:func:`score_scenario`, so a results document has the same rows whichever engine made it.

Stored in ``results["per_example"][scenario]`` (kept small: a few numbers per forget example
and method, plus one example's confidences):

    {"forget_ids": [...], "num_models": N,
     "methods": {"scrub": {"num_models": N,                # per side (N/2 for the oracle's split)
                           "epsilons": [...],            # per forget example, forget_ids' order
                           "ulira_accuracy": [...],      # per forget example (when scored)
                           "worst": [{"id", "epsilon", "unlearned_median", "retrained_median"}, ...],
                           "example": {"id", "unlearned": [...], "retrained": [...]}}}}

``worst`` lists the :data:`WORST` examples with the largest epsilon; ``example`` holds every
model's logit-scaled confidence on the worst one, for its histogram.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from obliviate.bench.results import ORACLE, add_row
from obliviate.evaluation import nips_epsilons, nips_final_score, nips_points, ulira

__all__ = ["score_scenario", "WORST", "DIGITS"]

WORST = 10  # forget examples listed per method
DIGITS = 4  # decimals kept for per-example numbers in results.json


def _round(values: Any) -> list[float]:
    return [round(float(v), DIGITS) for v in np.asarray(values, dtype=np.float64).ravel()]


def _ulira_split(unlearned: np.ndarray, retrained: np.ndarray, is_oracle: bool):
    """Shadow and target samples for U-LiRA from one model per seed (None if too few seeds).

    A method: the first half of the seeds are shadows (its unlearned models and the retrained
    ones), the second half targets (both kinds). The oracle: its retrained models in quarters
    (shadow "unlearned", shadow retrained, target "unlearned", target retrained).
    """
    n = len(retrained)
    if is_oracle:
        q = n // 4
        if q < 2:
            return None
        parts = [retrained[i * q : (i + 1) * q] for i in range(4)]
        return parts[0], parts[1], np.concatenate([parts[2], parts[3]]), np.arange(2 * q) < q
    h = n // 2
    if h < 2:
        return None
    targets = np.concatenate([unlearned[h : 2 * h], retrained[h : 2 * h]])
    return unlearned[:h], retrained[:h], targets, np.arange(2 * h) < h


def _view(forget_ids: np.ndarray, eps: np.ndarray, unlearned: np.ndarray, retrained: np.ndarray) -> dict[str, Any]:
    order = sorted(range(len(eps)), key=lambda i: (-eps[i], int(forget_ids[i])))[:WORST]
    worst = [
        {
            "id": int(forget_ids[i]),
            "epsilon": round(float(eps[i]), DIGITS),
            "unlearned_median": round(float(np.median(unlearned[:, i])), DIGITS),
            "retrained_median": round(float(np.median(retrained[:, i])), DIGITS),
        }
        for i in order
    ]
    top = order[0]
    return {
        "num_models": int(unlearned.shape[0]),
        "epsilons": _round(eps),
        "worst": worst,
        "example": {"id": int(forget_ids[top]), "unlearned": _round(unlearned[:, top]), "retrained": _round(retrained[:, top])},
    }


def score_scenario(
    results: dict[str, Any],
    scenario: str,
    forget_ids: Sequence[int],
    conf: Mapping[str, Sequence[np.ndarray | None]],
    retain_acc: Mapping[str, Sequence[float | None]],
    test_acc: Mapping[str, Sequence[float | None]],
) -> None:
    """Add the over-seeds rows of ``scenario`` and its per-example view to ``results``.

    ``conf[method][s]`` is the logit-scaled confidence of each forget example under seed ``s``'s
    model (``None`` where the method failed on that seed: such a method gets no over-seeds
    score); ``retain_acc`` and ``test_acc`` likewise. The oracle (``retrain``) must be present.

    Rows (seed ``null``): ``nips_forget_score`` and ``nips_score`` (Triantafillou et al. 2024,
    against the N retrained models; the oracle's own row scores one half of its models against
    the other, N/2 a side, the reference a perfect method reaches); ``ulira_accuracy`` and
    ``ulira_auc`` (Hayes et al. 2024; see :func:`_ulira_split`), with at least 4 seeds (8 for the
    oracle).
    """
    ids = np.asarray(forget_ids, dtype=np.int64)
    retrained = np.stack(conf[ORACLE])
    ra_r, ta_r = np.asarray(retain_acc[ORACLE], dtype=float), np.asarray(test_acc[ORACLE], dtype=float)
    views: dict[str, Any] = {}
    for method, samples in conf.items():
        if any(s is None for s in samples) or len(samples) != len(retrained):
            continue  # a method that failed on some seed has no comparable distribution
        unlearned = np.stack(samples)
        ra_u, ta_u = np.asarray(retain_acc[method], dtype=float), np.asarray(test_acc[method], dtype=float)
        if method == ORACLE:
            half = len(retrained) // 2
            if half < 3:
                continue  # with two models a side, ceil(ln(N - 1)) = 0 leaves no bucket to score
            unlearned, reference = retrained[:half], retrained[half : 2 * half]
            ra_u, ra_ref, ta_u, ta_ref = ra_r[:half], ra_r[half : 2 * half], ta_r[:half], ta_r[half : 2 * half]
        else:
            reference, ra_ref, ta_ref = retrained, ra_r, ta_r
        eps = nips_epsilons(unlearned, reference)
        forget_score = float(np.mean(nips_points(eps, len(unlearned))))  # = nips_forget_score(unlearned, reference)
        add_row(results, scenario, method, None, "nips_forget_score", forget_score)
        add_row(results, scenario, method, None, "nips_score", nips_final_score(forget_score, ra_u, ra_ref, ta_u, ta_ref))
        views[method] = _view(ids, eps, unlearned, reference)
        split = _ulira_split(np.stack(samples), retrained, method == ORACLE)
        if split is not None:
            attack = ulira(*split)
            add_row(results, scenario, method, None, "ulira_accuracy", attack.accuracy)
            add_row(results, scenario, method, None, "ulira_auc", attack.auc)
            views[method]["ulira_accuracy"] = _round(attack.per_example_accuracy)
    if views:
        results.setdefault("per_example", {})[scenario] = {
            "forget_ids": ids.tolist(),
            "num_models": len(retrained),
            "methods": views,
        }
