"""``unlearn(model, request, data, method=...)``: the one entry point for every method."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.request import ForgetRequest
from obliviate.training.recipe import Recipe
from obliviate.unlearning.base import Unlearner, UnlearnResult, UnlearnTask
from obliviate.unlearning.registry import make_method

__all__ = ["unlearn", "check_model"]


def check_model(model: Any, data: Dataset) -> nn.Module:
    """The model must be an ``nn.Module`` mapping ``data``'s inputs to ``num_classes`` logits."""
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        try:
            out = model(data.tensors[0][:2])
        except Exception as exc:  # noqa: BLE001 - report any shape mismatch the same way
            raise InvalidInputError(
                f"the model cannot take this data's inputs of shape {data.input_shape}: {exc}"
            ) from exc
    model.train(was_training)
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise InvalidInputError(
            f"the model outputs shape {tuple(out.shape)}, expected (batch, {data.num_classes}) logits for this data."
        )
    return model


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
    from obliviate.empirical.lm.base import check_family, is_language_model, unlearn_language_model

    if is_language_model(model):
        return unlearn_language_model(
            model, request, data, method=method, settings=settings, seed=seed,
            idk_answers=None if idk_answers is None else list(idk_answers),
        )
    if not isinstance(data, Dataset):
        raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}.")
    if not isinstance(request, ForgetRequest):
        request = ForgetRequest(ids=request)
    unlearner = make_method(method, settings)
    check_family(unlearner, language_model=False)
    forget, retain = request.split(data)
    check_model(model, data)
    original = copy.deepcopy(model).eval()
    for p in original.parameters():
        p.requires_grad_(False)
    task = UnlearnTask(original=original, forget=forget, retain=retain, seed=int(seed), recipe=recipe)
    out, cost = unlearner.execute(model, task)
    return UnlearnResult(
        model=out,
        cost=cost,
        method=unlearner.name,
        guarantee=unlearner.guarantee,
        config=unlearner.settings(),
        forget_ids=forget.ids.copy(),
    )
