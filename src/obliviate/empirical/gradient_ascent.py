"""Gradient ascent (GA, "NegGrad"): maximise the loss on the forget set.

The simplest approximate unlearner: run SGD on ``-CE(f(x_f), y_f)`` over D_f, undoing the
training signal the forget set contributed. Thudi et al., "Unrolling SGD: Understanding Factors
Influencing Machine Unlearning", IEEE EuroS&P 2022 (the gradient-ascent baseline); Jia et al.,
"Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023 (the "GA" row of their tables;
code OPTML-Group/Unlearn-Sparse ``optim/unlearn/GA.py``: ``loss = -criterion(output, target)``);
the NeurIPS 2023 unlearning challenge's baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.training.loop import make_optimizer
from obliviate.unlearning.base import Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["GradientAscent", "accuracy", "ascent_loss", "check_stop_accuracy", "forget_set_forgotten"]


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``(X, y)`` the model classifies correctly, in eval mode and without gradients."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = float((model(X).argmax(dim=1) == y).float().mean())
    model.train(was_training)
    return correct


def forget_set_forgotten(
    model: nn.Module, batch_logits: torch.Tensor, batch_y: torch.Tensor, task: UnlearnTask, stop_accuracy: float
) -> bool:
    """Whether the accuracy on the whole forget set ``task.forget`` is ``<= stop_accuracy``.

    With ``stop_accuracy`` 0 the full pass runs only when the current batch's logits (already
    computed for the loss) have no correct prediction either: a set with no correct example has
    no batch with one, so the stop is exact and a still-recognised set costs nothing to watch. A
    threshold above 0 checks the whole set before every step. The pass counts as a read.
    """
    if stop_accuracy < 0:
        return False
    if stop_accuracy == 0 and bool((batch_logits.detach().argmax(dim=1) == batch_y).any()):
        return False
    task.record_read(task.forget)
    return accuracy(model, *task.forget.tensors) <= stop_accuracy


def ascent_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """GA's loss on a forget batch: ``-CE(f(x_f), y_f)`` (minimised, so the cross-entropy ascends)."""
    return -F.cross_entropy(logits, y)


def check_stop_accuracy(method: str, value: float) -> None:
    """``stop_accuracy`` is a forget-set accuracy (at most 1) or negative for "never stop early"."""
    if value > 1:
        raise InvalidInputError(
            f"{method}.stop_accuracy must be a forget-set accuracy <= 1 "
            f"(or negative to turn the early stop off), got {value}."
        )


@register
class GradientAscent(Unlearner):
    """GA: ``min_theta -E_{D_f} CE(f_theta(x), y)`` by SGD over the forget set only.

    Published setting (Unlearn-Sparse, CIFAR-10 ResNet-18): SGD, momentum 0.9, weight decay
    5e-4, lr 1e-4, 5 epochs, batch 256. The loss is unbounded (its gradient does not vanish once
    the forget examples are misclassified), so the step budget is the whole method, and there is
    no budget that suits both forgetting scenarios: on the digits MLP, enough ascent to erase a
    class (forget accuracy 0) costs 5-15 points of test accuracy on the other classes, and the
    same budget applied to a random 10% of the training set ascends on every class and can
    collapse the model. The defaults are chosen on the digits bench for the random-subset case,
    where GA must stay close to the original (see the project's benchmark notes): plain SGD
    (no momentum), lr 0.002, 20 epochs of batch 32. They only partly erase a class; raise
    ``epochs`` (or ``lr``) for that. A larger lr drives the loss to -inf and raises
    :class:`~obliviate.errors.DivergedError`.

    Early stop (an addition to the published loop): ascent ends as soon as the accuracy on the
    whole forget set is ``<= stop_accuracy`` (checked before each step) (default 0: no forget example is classified
    correctly any more), because past that point the ascent only damages the rest of the model.
    A negative value turns the stop off.
    """

    name = "gradient_ascent"
    summary = "gradient ascent on the forget set's cross-entropy"
    stream: ClassVar[int] = 200  # orders the forget batches

    @dataclass(frozen=True)
    class Config:
        epochs: int = 20
        lr: float = 0.002
        momentum: float = 0.0
        weight_decay: float = 5e-4
        batch_size: int = 32
        stop_accuracy: float = 0.0

    def validate_config(self) -> None:
        super().validate_config()
        check_stop_accuracy(self.name, self.config.stop_accuracy)

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        c = self.config
        optimizer = make_optimizer(
            "sgd", model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        generator = task.generator(self.stream)
        model.train()
        for _ in range(c.epochs):
            for x, y in task.batches("forget", c.batch_size, generator=generator):
                logits = model(x)
                if forget_set_forgotten(model, logits, y, task, c.stop_accuracy):
                    return model.eval()
                task.step(optimizer, ascent_loss(logits, y), batch=len(y))
        return model.eval()
