"""Random labels: relabel the forget set with wrong classes and fine-tune on it together with D_r.

Graves, Nagisetty and Ganesh, "Amnesiac Machine Learning", AAAI 2021, Sec. 4 ("Unlearning"):
each sensitive example is relabelled with a randomly chosen *incorrect* label and the model is
trained on the relabelled data for a few iterations. Following the later benchmarks (Fan et al.
ICLR 2024 "SalUn", code OPTML-Group/Unlearn-Saliency ``Classification/unlearn/RL.py``, which
concatenates the relabelled forget set with the retain set), the fine-tuning pass runs over the
union D_f' + D_r, so the retain set keeps the rest of the model in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.empirical.finetune import FinetunePlanned, FinetuneSettings
from obliviate.errors import InvalidInputError
from obliviate.unlearning.base import UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["RandomLabel", "other_labels", "random_label_plan"]


def other_labels(y: torch.Tensor, num_classes: int, *, generator: torch.Generator) -> torch.Tensor:
    """For each label a class drawn uniformly from the ``num_classes - 1`` *other* classes.

    ``(y + U{1, ..., K-1}) mod K`` is uniform over the wrong classes and never returns ``y``.
    """
    if num_classes < 2:
        raise InvalidInputError(f"random labels need at least 2 classes to pick a wrong one, got {num_classes}.")
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y + shift) % num_classes


def relabelled_union(task: UnlearnTask, *, generator: torch.Generator) -> Dataset:
    """D_f with wrong labels, followed by D_r: the training set of the random-label pass (ids kept)."""
    forget, retain = task.forget, task.retain
    wrong = other_labels(torch.from_numpy(forget.y), task.num_classes, generator=generator).numpy()
    return Dataset(
        X=np.concatenate([forget.X, retain.X]),
        y=np.concatenate([wrong, retain.y]).astype(np.int64),
        ids=np.concatenate([forget.ids, retain.ids]),
        num_classes=task.num_classes,
        name=f"{retain.name}+relabelled-forget",
    )


def random_label_plan(task: UnlearnTask, *, stream: int, **loop: float | int) -> dict:
    """The random-label pass as a fine-tuning plan (:func:`~obliviate.empirical.finetune.finetune_loop`):
    train on D_f' + D_r, D_f relabelled once from the run's ``stream + 1`` generator, batches ordered
    by ``stream``; ``loop`` holds the settings. SalUn adds its saliency mask to the same plan."""
    return {**loop, "stream": stream, "data": relabelled_union(task, generator=task.generator(stream + 1))}


@register
class RandomLabel(FinetunePlanned):
    """Random labels (Graves et al. AAAI 2021): ``min_theta E_{D_f' + D_r} CE(f_theta(x), y')``.

    ``y' = y`` on D_r and a uniformly drawn wrong class on D_f, drawn once per run from the
    run's seed. SGD with momentum and a cosine schedule (the shared fine-tuning loop). Published
    setting for this baseline in SalUn's code (CIFAR-10 ResNet-18): 10 epochs, lr 0.01; on the
    digits MLP the defaults are chosen on the digits bench (see the project's benchmark notes):
    3 epochs at lr 0.01, batch 64 (lr 0.02 pushes a random forget subset below the retrained
    model's accuracy on it).
    """

    name = "random_label"
    summary = "fine-tune on retain + forget with the forget labels replaced by random wrong classes"

    @dataclass(frozen=True)
    class Config(FinetuneSettings):
        epochs: int = 3
        lr: float = 0.01

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict:
        return random_label_plan(task, stream=220, **self.config.loop())
