"""The NeurIPS 2023 machine-unlearning challenge metric: per-example empirical epsilon, forget
score and final score.

Paper: Triantafillou et al. 2024, "Are we making progress in unlearning? Findings from the first
NeurIPS unlearning competition" (arXiv 2406.09073), Sec. 3 and App. B; reference code
google-deepmind/unlearning_evaluation ``metric.py`` (``_get_epsilons``,
``_get_single_threshold_rates``, ``_get_double_threshold_rates``,
``compute_forget_score_from_confs``) and ``main.py`` (final score).

The reference builds, for every forget example, a (models x thresholds) comparison matrix for
~160,000 double thresholds and a few hundred single ones. Here the same thresholds are built
with the same floating-point operations, but each attack's error counts come from binary search
in the sorted samples (``count(l <= c <= r) = count(c <= r) - count(c < l)``), and each attack's
epsilon from a table indexed by its (false-positive, false-negative) counts, computed once with
the reference's float32 arithmetic. The results are identical to the reference's (a test
compares them on random inputs); 512 models x 100 examples take about a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from obliviate.errors import InvalidInputError
from obliviate.evaluation.arrays import as_numpy, float_array, same_shape

__all__ = ["nips_epsilons", "nips_points", "nips_forget_score", "nips_final_score", "DELTA", "EPSILON_CAP"]

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0  # double thresholds: the window's right end spans the peakier sample +-BUFFER
PEAKY_RATIO = 0.01  # smaller range / larger range below this: the example gets the cap
_DISCARDED = np.float32(-1.0)  # an attack with exactly one error rate zero (never a real epsilon)


def _epsilon_table(num_models: int, delta: float) -> np.ndarray:
    """``table[fp, fn]``: one attack's epsilon from its false-positive and false-negative counts.

    ``FPR = fp / N`` and ``FNR = fn / N`` in float32 (the reference averages float32 0/1
    indicators), ``eps = max(log(1 - delta - FPR) - log(FNR), log(1 - delta - FNR) - log(FPR))``
    in float32, clipped below at 0; ``FPR = FNR = 0`` gives inf; exactly one of them 0, or both
    terms undefined, marks the attack discarded.
    """
    rate = np.arange(num_models + 1, dtype=np.float32) / np.float32(num_models)
    fpr, fnr = rate[:, None], rate[None, :]
    one = np.float32(1 - delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.clip(np.fmax(np.log(one - fpr) - np.log(fnr), np.log(one - fnr) - np.log(fpr)), 0, None)
    eps[np.isnan(eps)] = _DISCARDED
    eps[0, 1:] = _DISCARDED
    eps[1:, 0] = _DISCARDED
    eps[0, 0] = np.inf
    return eps


def _double_threshold_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative counts of every window attack ``t_l <= c <= t_r``.

    As the reference: the sample with the smaller range (the peakier one; ``neg`` when the
    ranges are equal) is positive; right ends run over the positive sample's range +-2 at 100
    per unit, and each window's left end over ``t_r - width +- 2`` at 100 per unit, ``width``
    being the smaller range.
    """
    pos_diff = pos.max() - pos.min()
    neg_diff = neg.max() - neg.min()
    width = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:
        pos, neg = neg, pos
    lo = (pos.min() + width) - BUFFER
    hi = pos.max() + BUFFER
    right = np.linspace(lo, hi, num=int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    shifted = right - width
    left = np.linspace(shifted - BUFFER, shifted + BUFFER, num=int(np.ceil(2 * BUFFER * THRESHOLDS_PER_UNIT)), axis=1)
    n = pos.shape[0]
    counts = []
    for sample in (pos, neg):
        ordered = np.sort(sample)
        at_most_right = np.searchsorted(ordered, right, side="right")[:, None]
        below_left = np.searchsorted(ordered, left.ravel(), side="left").reshape(left.shape)
        counts.append(np.maximum(at_most_right - below_left, 0).ravel())  # predicted positive
    true_pos, false_pos = counts
    return false_pos, n - true_pos


def _single_threshold_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative counts of every attack ``c >= t``.

    Thresholds span the joint range at 100 per unit; like the reference they come from
    ``torch.linspace`` on float64 ends, which returns float32 values.
    """
    joint = np.concatenate([pos, neg])
    lo, hi = torch.tensor(joint.min()), torch.tensor(joint.max())
    num = int(torch.ceil((hi - lo) * THRESHOLDS_PER_UNIT))
    thresholds = torch.linspace(lo, hi, num).numpy().astype(np.float64)
    n = pos.shape[0]
    true_pos = n - np.searchsorted(np.sort(pos), thresholds, side="left")
    false_pos = n - np.searchsorted(np.sort(neg), thresholds, side="left")
    return false_pos, n - true_pos


def _example_epsilon(pos: np.ndarray, neg: np.ndarray, table: np.ndarray) -> float:
    """The largest epsilon over every kept attack on one example (0 if every attack is discarded)."""
    pos_diff = pos.max() - pos.min()
    neg_diff = neg.max() - neg.min()
    largest, smallest = (pos_diff, neg_diff) if pos_diff > neg_diff else (neg_diff, pos_diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        if smallest / largest < PEAKY_RATIO:  # 0/0 is nan, which is not < 0.01: as the reference
            return EPSILON_CAP
    best = _DISCARDED
    for fp, fn in (_double_threshold_counts(pos, neg), _single_threshold_counts(pos, neg)):
        if fp.size:
            best = max(best, table[fp, fn].max())
    return 0.0 if best < 0 else float(best)


def _check_confs(unlearned_conf: Any, retrained_conf: Any, delta: float) -> tuple[np.ndarray, np.ndarray]:
    unlearned = float_array(unlearned_conf, "unlearned_conf", ndim=2)
    retrained = float_array(retrained_conf, "retrained_conf", ndim=2)
    same_shape(unlearned, retrained, ("unlearned_conf", "retrained_conf"))
    if unlearned.shape[0] < 2:
        raise InvalidInputError(
            f"unlearned_conf and retrained_conf hold {unlearned.shape[0]} model(s) (axis 0 of shape "
            f"{unlearned.shape}); the metric compares distributions over models: pass at least 2 "
            "(the challenge used 512), with forget examples on axis 1."
        )
    if not 0.0 < float(delta) < 1.0:
        raise InvalidInputError(f"delta must be in (0, 1), got {delta}; the challenge used 1e-5.")
    return unlearned, retrained


def nips_epsilons(unlearned_conf: Any, retrained_conf: Any, delta: float = DELTA) -> np.ndarray:
    """The empirical epsilon of each forget example, shape ``(examples,)``, in ``[0, 50]``.

    ``unlearned_conf`` and ``retrained_conf`` have shape ``(models, forget examples)``: the
    logit-scaled confidence (:func:`~obliviate.evaluation.logit_scaled_confidence`) of each
    forget example under N unlearned and N retrained models. Triantafillou et al. 2024, Sec. 3,
    Eq. (1)-(2); google-deepmind/unlearning_evaluation ``metric.py::_get_epsilons``:

    - per example, the sample (unlearned or retrained) with the larger median is positive (the
      unlearned one on a tie);
    - if (smaller range) / (larger range) < 0.01 the example gets the cap, 50;
    - attacks: every single threshold (positive iff ``c >= t``, ``t`` over the joint range at
      100 per unit) and every double threshold (positive iff ``t_l <= c <= t_r``, see the
      reference's ``_get_double_threshold_rates``);
    - per attack ``eps = max(log(1 - delta - FPR) - log(FNR), log(1 - delta - FNR) - log(FPR))``,
      clipped below at 0; ``FPR = FNR = 0`` gives inf; exactly one of them 0 discards the attack;
    - per example the largest epsilon of the kept attacks, clipped to ``[0, 50]``.

    Choices where the reference gives no answer: inputs are cast to float64 (the reference's
    confidences are float64); an example whose every attack is discarded (possible only when
    both samples are constant and equal) gets 0, where the reference stops on an assertion;
    error rates are ``count / N`` rounded once to float32, as PyTorch's CPU mean computes them
    (its CUDA mean multiplies by ``1/N``, which is the same number when N is a power of two,
    as the challenge's 512 is).
    """
    unlearned, retrained = _check_confs(unlearned_conf, retrained_conf, delta)
    retrain_is_positive = np.median(retrained, axis=0) > np.median(unlearned, axis=0)
    pos = np.where(retrain_is_positive, retrained, unlearned)
    neg = np.where(retrain_is_positive, unlearned, retrained)
    table = _epsilon_table(pos.shape[0], float(delta))
    eps = [_example_epsilon(pos[:, i], neg[:, i], table) for i in range(pos.shape[1])]
    return np.clip(np.asarray(eps, dtype=np.float64), 0.0, EPSILON_CAP)


def nips_points(epsilons: Any, num_models: int) -> np.ndarray:
    """The points each example's epsilon earns in the challenge's forget score.

    Buckets of width 0.5 from 0 up to ``ceil(ln(N - 1))`` for N models: an epsilon in
    ``[0.5 k, 0.5 k + 0.5)`` earns ``2^-k``; beyond the last bucket, 0 (Triantafillou et al.
    2024, Sec. 3, Eq. (3); ``metric.py::compute_forget_score_from_confs``).
    """
    eps = float_array(np.atleast_1d(as_numpy(epsilons, "epsilons")), "epsilons", ndim=1)
    if np.any(eps < 0):
        raise InvalidInputError(f"epsilons must be >= 0, found {eps.min()}; pass nips_epsilons' output.")
    if int(num_models) < 2:
        raise InvalidInputError(f"num_models must be >= 2, got {num_models}.")
    max_epsilon = np.ceil(np.log(int(num_models) - 1))
    buckets = int(2 * max_epsilon)  # bucket k covers [0.5 k, 0.5 k + 0.5) and ends at or before max_epsilon
    k = np.floor(2 * eps)  # e < 0.5 (k + 1)  <=>  floor(2 e) <= k
    return np.where(k < buckets, 0.5**k, 0.0)


def nips_forget_score(unlearned_conf: Any, retrained_conf: Any, delta: float = DELTA) -> float:
    """The challenge's forget quality F: the mean over forget examples of :func:`nips_points`.

    Inputs as :func:`nips_epsilons`. 1 means no attack tells the unlearned models from the
    retrained ones on any example; 0 that every example is distinguished with epsilon beyond
    ``ceil(ln(N - 1))``. Triantafillou et al. 2024, Sec. 3, Eq. (3).
    """
    eps = nips_epsilons(unlearned_conf, retrained_conf, delta)
    num_models = as_numpy(unlearned_conf, "unlearned_conf").shape[0]
    return float(np.mean(nips_points(eps, num_models)))


def nips_final_score(
    forget_score: float, ra_unlearned: Any, ra_retrained: Any, ta_unlearned: Any, ta_retrained: Any
) -> float:
    """``F * (mean RA_unlearned / mean RA_retrained) * (mean TA_unlearned / mean TA_retrained)``.

    RA and TA are the per-model retain and test accuracies (arrays over the N models, or
    scalars). Triantafillou et al. 2024, Sec. 3, Eq. (4); google-deepmind/unlearning_evaluation
    ``main.py`` (``final_score``).
    """
    f = float(forget_score)
    if not 0.0 <= f <= 1.0:
        raise InvalidInputError(f"forget_score must be in [0, 1], got {forget_score}; pass nips_forget_score's output.")
    means = {}
    for name, value in (
        ("ra_unlearned", ra_unlearned),
        ("ra_retrained", ra_retrained),
        ("ta_unlearned", ta_unlearned),
        ("ta_retrained", ta_retrained),
    ):
        arr = float_array(np.atleast_1d(value), name, ndim=1)
        if np.any(arr < 0) or np.any(arr > 1):
            bad = arr.min() if np.any(arr < 0) else arr.max()
            raise InvalidInputError(
                f"{name} holds {bad}, outside [0, 1]; pass accuracies as fractions (divide percentages by 100)."
            )
        means[name] = float(np.mean(arr))
    for name in ("ra_retrained", "ta_retrained"):
        if means[name] == 0.0:
            raise InvalidInputError(f"{name} has mean 0, so the accuracy ratio is undefined; check the retrained models.")
    return f * (means["ra_unlearned"] / means["ra_retrained"]) * (means["ta_unlearned"] / means["ta_retrained"])
