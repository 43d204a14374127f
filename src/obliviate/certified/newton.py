"""Certified removal by one Newton step (Guo, Goldstein, Hannun, van der Maaten, ICML 2020).

The unlearner ``certified_newton`` removes a request's points from a
:class:`~obliviate.certified.logistic.CertifiedLogisticRegression` with the Newton update
``w <- w + H^-1 Delta`` (Guo et al. eq. (2), all requested points in one step) and adds the
data-dependent gradient-residual bound of Corollary 1 to the model's budget. While the
accumulated bound stays within ``sigma epsilon / c`` the result is an (epsilon, delta)-certified
removal (Theorem 3); past it the model is retrained on the remaining data with fresh noise
(policy ``retrain``) or the request is refused with :class:`~obliviate.errors.BudgetExhaustedError`
(policy ``refuse``). The returned model carries the updated budget, so successive requests
accumulate. The model, its training function and the maths are in
:mod:`obliviate.certified.logistic`.

For a :class:`~obliviate.certified.stored_hessian.StoredHessianLogisticRegression` (from
:func:`~obliviate.certified.stored_hessian.fit_stored_hessian`) the same unlearner takes the fast
path: one Newton step from the trained weights with the training Hessian downdated by the removed
points (Sekhari et al. 2021), O(K d^2) per point and O(K d^3) per request whatever n, with Guo et
al.'s bound for the whole removed set (``benchmarks/certified_fast.py``: about 400x a fresh fit at
n = 20,000, against about 10x for the loop here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from obliviate.certified.logistic import (
    POLICIES,
    AlreadyRemovedError,
    CertifiedLogisticRegression,
    fit_certified,
)
from obliviate.errors import InvalidInputError, UnsupportedModelError
from obliviate.unlearning.base import Guarantee, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["CertifiedNewton", "CertifiedLogisticRegression", "fit_certified", "AlreadyRemovedError"]

SUPPORTED = ("CertifiedLogisticRegression (train it with obliviate.certified.fit_certified)",)


@register
class CertifiedNewton(Unlearner):
    """Certified removal: one Newton step on the remaining data, residual bound charged to the budget.

    Guo et al. ICML 2020, eq. (2) for the step, Corollary 1 for the bound, Theorem 3 for the
    (epsilon, delta) certificate. ``policy`` is ``"model"`` (use the policy the model was trained
    with), ``"retrain"`` or ``"refuse"``. The guarantee's epsilon and delta are the model's; the
    class-level value shows :func:`fit_certified`'s defaults.
    """

    name = "certified_newton"
    guarantee = Guarantee("certified")  # epsilon and delta come from the model
    summary = "Newton-step removal with an (epsilon, delta) certificate (L2 logistic regression only)"

    @dataclass(frozen=True)
    class Config:
        policy: str = "model"

    def validate_config(self) -> None:
        super().validate_config()
        if self.config.policy not in ("model", *POLICIES):
            raise InvalidInputError(
                f"{self.name}.policy must be 'model', 'retrain' or 'refuse', got {self.config.policy!r}."
            )

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        if not isinstance(model, CertifiedLogisticRegression):
            raise UnsupportedModelError(self.name, type(model).__name__, SUPPORTED)
        self.guarantee = Guarantee("certified", model.epsilon, model.delta)
        forget = task.forget
        cached = model.train_y.numpy()[model._positions(forget.ids)]
        if not np.array_equal(cached, forget.y):
            raise InvalidInputError(
                "the forget examples' labels differ from those the certified model was trained on; "
                "pass the training data the model was fitted on."
            )
        policy = None if self.config.policy == "model" else self.config.policy
        model.remove(forget.ids, policy=policy)
        task.record_read(forget)
        task.record_read(task.retain.subset(task.retain.ids[np.isin(task.retain.ids, model.active_ids)]))
        for p in model.parameters():  # the base class marks every parameter trainable; nothing here is
            p.requires_grad_(False)
        return model
