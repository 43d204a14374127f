"""U-LiRA: the per-example likelihood-ratio attack that tells unlearned models from retrained ones.

Paper: Hayes, Shumailov, Triantafillou, Khalifa, Papernot 2024, "Inexact unlearning needs more
careful evaluations to avoid a false sense of privacy" (arXiv 2403.01218), Sec. 3 (per-example
U-MIAs) and Algorithm 1 (U-LiRA), which adapts LiRA (Carlini et al. S&P 2022, Sec. IV, Eq. 4):

1. shadow models: for each forget example x, K models that were trained with x and then
   unlearned it, and K models retrained without it;
2. per example, the logit-scaled confidence ``phi = log(p_y) - log(1 - p_y)`` of x under each
   shadow model; a Gaussian ``N(mu_u, sigma_u^2)`` fitted to the unlearned shadows' values and
   ``N(mu_r, sigma_r^2)`` to the retrained shadows';
3. for a target model, the likelihood ratio
   ``Lambda = N(phi_target; mu_u, sigma_u^2) / N(phi_target; mu_r, sigma_r^2)``; the attack calls
   the target "unlearned" when ``Lambda > 1`` (equal priors: half the targets are unlearned);
4. the attack is evaluated on held-out target models, half unlearned and half retrained; its
   accuracy (0.5 = the unlearned models are indistinguishable from retraining) and AUC.

Here the forget set is the same for every model (the NeurIPS 2023 challenge's setting, which
the bench runs), so every shadow model gives one value for every forget example; the paper
draws random forget sets so that each example is forgotten by some shadows only. The
Gaussians use the sample mean and the sample standard deviation (ddof 1), floored at
:data:`STD_FLOOR` so that a constant sample still gives a finite density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from obliviate.errors import InvalidInputError
from obliviate.evaluation.arrays import as_numpy, float_array

__all__ = ["ULiraResult", "ulira", "ulira_log_ratio", "STD_FLOOR"]

#: Smallest standard deviation a fitted Gaussian may have (in logit-scaled confidence units).
STD_FLOOR = 1e-4


@dataclass(frozen=True)
class ULiraResult:
    """U-LiRA's verdict on a set of target models.

    ``accuracy``: balanced accuracy over every (target model, forget example) pair, the mean of
    the accuracy on the unlearned targets and on the retrained ones (0.5 = chance);
    ``auc``: area under the ROC curve of ``log_ratio`` over the same pairs;
    ``per_example_accuracy``: the balanced accuracy of each forget example's attack, shape
    ``(examples,)``; ``log_ratio``: ``log Lambda`` of every pair, shape ``(targets, examples)``.
    """

    accuracy: float
    auc: float
    per_example_accuracy: np.ndarray
    log_ratio: np.ndarray


def _gaussian(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return sample.mean(axis=0), np.maximum(sample.std(axis=0, ddof=1), STD_FLOOR)


def _log_density(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``log N(x; mean, std^2)`` up to the constant ``-log(2 pi) / 2`` (it cancels in the ratio)."""
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std)


def _shadows(value: Any, name: str) -> np.ndarray:
    arr = float_array(value, name, ndim=2)
    if arr.shape[0] < 2:
        raise InvalidInputError(
            f"{name} holds {arr.shape[0]} shadow model(s) (axis 0 of shape {arr.shape}); fitting a Gaussian "
            "needs at least 2 per side (Hayes et al. use dozens)."
        )
    return arr


def ulira_log_ratio(shadow_unlearned: Any, shadow_retrained: Any, target_conf: Any) -> np.ndarray:
    """``log Lambda`` of each target model on each forget example, shape ``(targets, examples)``.

    ``shadow_unlearned`` (K_u, E) and ``shadow_retrained`` (K_r, E): logit-scaled confidences
    (:func:`~obliviate.evaluation.logit_scaled_confidence`) of the E forget examples under the
    shadow models; ``target_conf`` (T, E): the same for the target models. Per example,
    ``log N(phi; mu_u, sigma_u^2) - log N(phi; mu_r, sigma_r^2)`` (Hayes et al. 2024, Alg. 1).
    Positive means the target looks unlearned rather than retrained.
    """
    unlearned = _shadows(shadow_unlearned, "shadow_unlearned")
    retrained = _shadows(shadow_retrained, "shadow_retrained")
    target = float_array(target_conf, "target_conf", ndim=2)
    width = {unlearned.shape[1], retrained.shape[1], target.shape[1]}
    if len(width) != 1:
        raise InvalidInputError(
            f"shadow_unlearned {unlearned.shape}, shadow_retrained {retrained.shape} and target_conf {target.shape} "
            "must have the same number of forget examples on axis 1, in the same order."
        )
    mu_u, sd_u = _gaussian(unlearned)
    mu_r, sd_r = _gaussian(retrained)
    return _log_density(target, mu_u, sd_u) - _log_density(target, mu_r, sd_r)


def ulira(shadow_unlearned: Any, shadow_retrained: Any, target_conf: Any, target_unlearned: Any) -> ULiraResult:
    """Run U-LiRA against target models of known kind; see the module docstring for the method.

    ``target_unlearned`` (T,) is True for the targets that were unlearned and False for the
    ones retrained from scratch; both kinds must be present (the paper uses as many of each).
    A target is called unlearned on an example when ``log Lambda > 0``.
    """
    log_ratio = ulira_log_ratio(shadow_unlearned, shadow_retrained, target_conf)
    truth = as_numpy(target_unlearned, "target_unlearned")
    if truth.dtype != bool:
        if truth.dtype.kind not in "iu" or not np.isin(truth, (0, 1)).all():
            raise InvalidInputError(f"target_unlearned must hold booleans (True = unlearned), got dtype {truth.dtype}.")
        truth = truth.astype(bool)
    if truth.shape != (log_ratio.shape[0],):
        raise InvalidInputError(
            f"target_unlearned has shape {truth.shape}; it needs one flag per target model, ({log_ratio.shape[0]},)."
        )
    if truth.all() or not truth.any():
        raise InvalidInputError("target_unlearned must mark some targets unlearned and some retrained (half each).")
    called = log_ratio > 0
    per_example = 0.5 * (called[truth].mean(axis=0) + (~called[~truth]).mean(axis=0))
    labels = np.broadcast_to(truth[:, None], log_ratio.shape).ravel()
    auc = float(roc_auc_score(labels, log_ratio.ravel()))
    return ULiraResult(
        accuracy=float(per_example.mean()), auc=auc, per_example_accuracy=per_example, log_ratio=log_ratio
    )
