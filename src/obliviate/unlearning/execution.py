"""One ``execute()`` for every method, classifier or language model; one way to build their tasks.

Running a method is the same for both families: copy the original, make its weights trainable,
time and count the run under the task's seed, then refuse a result whose weights or outputs are
not finite (:class:`~obliviate.errors.DivergedError`). What differs is small and lives in a
:class:`Family`: how a model is copied, which ``nn.Module`` holds its weights, and what a probe of
its outputs on retained data looks like. :func:`execute` is that one loop;
``Unlearner.execute`` and ``LMUnlearner.execute`` are its two callers.

:func:`family_of` tells the families apart (a ``LanguageModel`` has a tokenizer and a prompt
format); :func:`build_task` builds the task each family's methods read, so ``obliviate.unlearn``
has a single path for both.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import DivergedError, InvalidInputError
from obliviate.request import ForgetRequest
from obliviate.training.loop import seeded_global_rng
from obliviate.unlearning.base import Cost, Unlearner, UnlearnTask

__all__ = [
    "Family",
    "CLASSIFIER",
    "LANGUAGE_MODEL",
    "family_of",
    "is_language_model",
    "execute",
    "build_task",
    "check_data",
    "check_family",
    "check_model",
]


@dataclass(frozen=True)
class Family:
    """What :func:`execute` needs to know about a kind of model.

    ``copy(model)``: an independent copy; ``network(model)``: the ``nn.Module`` holding the
    weights; ``probe(network, task)``: outputs on a few retained examples (checked for finiteness).
    """

    name: str
    copy: Callable[[Any], Any]
    network: Callable[[Any], nn.Module]
    probe: Callable[[nn.Module, Any], torch.Tensor]


def _classifier_probe(net: nn.Module, task: UnlearnTask) -> torch.Tensor:
    return net(task.retain.tensors[0][:64])


def _lm_probe(net: nn.Module, task: Any) -> torch.Tensor:
    from obliviate.lm.batches import encode_qa, qa_items

    items = qa_items(task.retain)[:4]
    batch = encode_qa(task.original, [i.question for i in items], [i.answer for i in items], max_length=task.max_length)
    return net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


CLASSIFIER = Family("classifier", copy.deepcopy, lambda model: model, _classifier_probe)
LANGUAGE_MODEL = Family("language model", lambda lm: lm.copy(), lambda lm: lm.model, _lm_probe)


def is_language_model(model: Any) -> bool:
    """True for a ``LanguageModel`` (a causal-LM module with its tokenizer and prompt format)."""
    return (
        hasattr(model, "tokenizer")
        and callable(getattr(model, "prompt", None))
        and isinstance(getattr(model, "model", None), nn.Module)
    )


def check_family(unlearner: Unlearner, *, language_model: bool) -> None:
    """Refuse a classifier method on a language model and the reverse, naming the right family."""
    for part in getattr(unlearner, "parts", [unlearner]):
        is_lm = getattr(part, "family", "classifier") == "lm"
        if language_model and not is_lm:
            raise InvalidInputError(
                f"{part.name!r} is a classifier method and the model is a LanguageModel; use a language-model "
                "method: lm_grad_ascent, grad_diff, npo, simnpo, idk_dpo, rmu, task_vector, whp or undial."
            )
        if not language_model and is_lm:
            raise InvalidInputError(
                f"{part.name!r} is a language-model method and the model is a classifier; pass a LanguageModel "
                "and a QADataset, or use a classifier method (finetune, scrub, ... : see `obliviate methods`)."
            )


def family_of(model: Any) -> Family:
    return LANGUAGE_MODEL if is_language_model(model) else CLASSIFIER


def execute(unlearner: Unlearner, model: Any, task: UnlearnTask, *, family: Family) -> tuple[Any, Cost]:
    """Run ``unlearner.run`` on a copy of ``model``, timed and counted; ``model`` is never modified.

    The cost counts the gradient steps, examples seen and distinct examples touched during this
    run only (a composite adds its parts' costs). Raises :class:`DivergedError` when a weight or
    the outputs on a retain probe are not finite; the loss itself is checked at every step by
    ``task.backward``.
    """
    work = family.copy(model)
    for p in family.network(work).parameters():
        p.requires_grad_(True)
    steps0, seen0, touched0 = task.gradient_steps, task.examples_seen, set(task._touched)
    task._touched, task.method = set(), unlearner.name
    start = time.perf_counter()
    with seeded_global_rng(task.seed):
        out = unlearner.run(work, task)
    seconds = time.perf_counter() - start
    cost = Cost(seconds, task.gradient_steps - steps0, task.examples_seen - seen0, len(task._touched))
    task._touched |= touched0
    net = family.network(out).eval()
    for name, p in net.named_parameters():
        if not torch.isfinite(p).all():
            raise DivergedError(
                f"unlearning with {unlearner.name!r} (parameter {name})", task.gradient_steps, float("nan")
            )
    with torch.no_grad():  # finite weights can still overflow to non-finite outputs
        if not torch.isfinite(family.probe(net, task)).all():
            raise DivergedError(
                f"unlearning with {unlearner.name!r} (model outputs)", task.gradient_steps, float("nan")
            )
    if family is LANGUAGE_MODEL:
        for p in net.parameters():
            p.requires_grad_(False)
    return out, cost


def _frozen_copy(model: Any, family: Family) -> Any:
    original = family.copy(model)
    family.network(original).eval()
    for p in family.network(original).parameters():
        p.requires_grad_(False)
    return original


def check_data(data: Any, *, language_model: bool) -> None:
    """A language model unlearns from a QADataset, a classifier from an obliviate :class:`Dataset`."""
    if not language_model:
        if not isinstance(data, Dataset):
            raise InvalidInputError(
                f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays."
            )
        return
    items = getattr(data, "items", None)
    if (
        not hasattr(data, "ids")
        or not isinstance(items, tuple | list)
        or not items
        or not hasattr(items[0], "question")
    ):
        raise InvalidInputError(
            f"a LanguageModel unlearns from a QADataset (question-answer items), got {type(data).__name__}."
        )


def build_task(
    model: Any,
    request: ForgetRequest,
    data: Any,
    *,
    seed: int,
    recipe: Any = None,
    idk_answers: Sequence[str] | None = None,
) -> tuple[UnlearnTask, np.ndarray]:
    """The task a method of ``model``'s family reads, and the forgotten ids (checked at the door).

    A classifier needs an obliviate :class:`Dataset` and an ``nn.Module`` mapping its inputs to
    ``num_classes`` logits; a language model a QADataset, and ``idk_answers`` (IdkDPO's refusals)
    default to ``data.idk_answers`` or the built-in bank.
    """
    if is_language_model(model):
        from obliviate.unlearning.lm_task import DEFAULT_IDK_ANSWERS, LMUnlearnTask

        check_data(data, language_model=True)
        forget, retain = request.split(data)
        bank = tuple(idk_answers or getattr(data, "idk_answers", None) or DEFAULT_IDK_ANSWERS)
        if not all(isinstance(a, str) and a.strip() for a in bank):
            raise InvalidInputError("idk_answers must be non-empty strings.")
        original = _frozen_copy(model, LANGUAGE_MODEL)
        task: UnlearnTask = LMUnlearnTask(
            original=original, forget=forget, retain=retain, seed=int(seed), idk_answers=bank
        )
        return task, np.asarray(forget.ids, dtype=np.int64).copy()
    check_data(data, language_model=False)
    forget, retain = request.split(data)
    check_model(model, data)
    task = UnlearnTask(
        original=_frozen_copy(model, CLASSIFIER), forget=forget, retain=retain, seed=int(seed), recipe=recipe
    )
    return task, forget.ids.copy()


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
