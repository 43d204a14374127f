"""Gradient ascent (GA, "NegGrad"): maximise the loss on the forget set.

The simplest approximate unlearner: run SGD on ``-CE(f(x_f), y_f)`` over D_f, undoing the
training signal the forget set contributed. Thudi et al., "Unrolling SGD: Understanding Factors
Influencing Machine Unlearning", IEEE EuroS&P 2022 (the gradient-ascent baseline); Jia et al.,
"Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023 (the "GA" row of their tables;
code OPTML-Group/Unlearn-Sparse ``optim/unlearn/GA.py``: ``loss = -criterion(output, target)``);
the NeurIPS 2023 unlearning challenge's baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from obliviate.errors import InvalidInputError
from obliviate.training.loop import make_optimizer
from obliviate.unlearning.base import Learner, Unlearner
from obliviate.unlearning.registry import register

__all__ = ["GradientAscent", "ascent_loss", "check_stop_accuracy"]


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

    def loop(self, learner: Learner) -> None:
        c = self.config
        optimizer = make_optimizer("sgd", learner.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        generator = learner.generator(self.stream)
        for _ in range(c.epochs):
            for x, y in learner.batches("forget", c.batch_size, generator=generator):
                _, logits = learner.loss(_ascent_objective, x, y)
                if learner.forgotten(logits, y, c.stop_accuracy):  # checked before the step, per model
                    return
                learner.step(optimizer, batch=y.shape[-1])


def _ascent_objective(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> tuple:
    """GA's loss on a forget batch, with the logits for the early stop."""
    logits = model(x)
    return ascent_loss(logits, y), logits
