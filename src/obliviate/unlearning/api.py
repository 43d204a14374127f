"""``unlearn(model, request, data, method=...)``: the one entry point for every method.

Classifiers and language models take the same path: the arguments are checked once, the method
is looked up and matched to the model's family, the family's task is built
(:func:`obliviate.unlearning.execution.build_task`) and the method runs through its ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.request import ForgetRequest
from obliviate.training.recipe import Recipe
from obliviate.unlearning.base import Unlearner, UnlearnResult
from obliviate.unlearning.execution import build_task, check_data, check_family, check_model, is_language_model
from obliviate.unlearning.registry import make_method

__all__ = ["unlearn", "check_model"]


def unlearn(
    model: nn.Module,
    request: ForgetRequest | Iterable[int] | np.ndarray,
    data: Dataset,
    *,
    method: str | Unlearner = "finetune",
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    recipe: Recipe | None = None,
    idk_answers: Iterable[str] | None = None,
) -> UnlearnResult:
    """Remove ``request``'s examples of ``data`` from ``model`` with ``method``.

    ``data`` is the training set the model saw; ``request`` a :class:`ForgetRequest` (or ids).
    ``settings`` override the method's config (``{"alpha": 0.1}`` or ``{"scrub.alpha": 0.1}``).
    ``recipe`` is needed by methods that retrain. ``model`` is not modified; the result holds
    the unlearned copy and its :class:`~obliviate.unlearning.base.Cost`.

    A ``LanguageModel`` with a ``QADataset`` takes the language-model path (methods
    ``lm_grad_ascent``, ``grad_diff``, ``npo``, ``simnpo``, ``idk_dpo``, ``rmu``, ``task_vector``,
    ``whp``, ``undial``; ``idk_answers`` are IdkDPO's refusals); requests then name items or authors.
    """
    language_model = is_language_model(model)
    check_data(data, language_model=language_model)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}.")
    unlearner = make_method(method, settings)
    check_family(unlearner, language_model=language_model)
    if not isinstance(request, ForgetRequest):
        request = ForgetRequest(ids=request)
    task, forget_ids = build_task(
        model,
        request,
        data,
        seed=int(seed),
        recipe=recipe,
        idk_answers=None if idk_answers is None else list(idk_answers),
    )
    out, cost = unlearner.execute(model, task)
    return UnlearnResult(
        model=out,
        cost=cost,
        method=unlearner.name,
        guarantee=unlearner.guarantee,
        config=unlearner.settings(),
        forget_ids=forget_ids,
    )
