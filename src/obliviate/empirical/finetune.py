"""Fine-tuning on the retain set (the "FT" baseline of the unlearning literature).

Continue training the original model on D_r only, minimising ``CE(f(x_r), y_r)``, so the
forget set's influence fades by catastrophic forgetting (Golatkar et al. CVPR 2020 use it as
the fine-tune baseline; Jia et al. 2023 and Fan et al. 2024 report it as "FT"; the NeurIPS 2023
challenge starting kit ships it: SGD, momentum 0.9, weight decay 5e-4, cosine schedule).
Several methods end with this step, so it is exposed as :func:`retain_finetune`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.training.loop import make_optimizer, make_scheduler, num_batches
from obliviate.unlearning.base import Learner, OneModel, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["Finetune", "FinetuneSettings", "FinetunePlanned", "retain_finetune", "finetune_loop"]


@dataclass(frozen=True)
class FinetuneSettings:
    """Settings of the fine-tuning loop (SGD with momentum, cosine schedule) that every method
    ending in fine-tuning shares; a method's ``Config`` derives from it and may change defaults."""

    epochs: int = 5
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64

    def loop(self) -> dict[str, float | int]:
        """The fine-tuning settings of a plan (see :func:`finetune_loop`)."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
        }


def finetune_loop(learner: Learner, plans: Any) -> None:
    """SGD with a cosine schedule on ``CE(f(x), y) [+ penalty(theta, epoch)]``: the fine-tuning loop.

    ``plans`` is what :meth:`Learner.each` returned for the method's ``plan``: per model a dict with
    ``epochs``, ``lr``, ``momentum``, ``weight_decay``, ``batch_size``, ``stream`` (the batch order)
    and optionally ``data`` (a :class:`Dataset` replacing D_r: random labels train on relabelled D_f
    plus D_r), ``grad_mask`` (parameter name -> 0/1 tensor multiplying the gradient before each step,
    1 = may change; weight decay is then added to the gradient before the mask, so masked-out
    weights stay exactly where they are) and ``penalty`` (``penalty(params, epoch)`` added to the
    loss). Settings other than ``data`` and ``grad_mask`` are the same for every model; those two may
    differ per model (each model's own relabelling, saliency or pruning mask).
    """
    plan = learner.first(plans)
    data = learner.field(plans, "data")
    masks = learner.field(plans, "grad_mask")
    penalty: Callable[[list[torch.Tensor], int], torch.Tensor] | None = plan.get("penalty")
    size = len(plan["data"]) if plan.get("data") is not None else len(learner.retain)
    optimizer = make_optimizer(
        "sgd",
        learner.parameters(),
        lr=plan["lr"],
        momentum=plan["momentum"],
        weight_decay=0.0 if plan.get("grad_mask") is not None else plan["weight_decay"],
    )
    scheduler = make_scheduler("cosine", optimizer, plan["epochs"] * num_batches(size, plan["batch_size"]))
    generator = learner.generator(plan["stream"])
    for epoch in range(plan["epochs"]):

        def objective(model: Any, x: torch.Tensor, y: torch.Tensor, epoch: int = epoch) -> torch.Tensor:
            loss = F.cross_entropy(model(x), y)
            return loss if penalty is None else loss + penalty(list(model.parameters()), epoch)

        for x, y in learner.batches(data, plan["batch_size"], generator=generator):
            learner.loss(objective, x, y)
            learner.step(
                optimizer,
                batch=y.shape[-1],
                masks=masks if plan.get("grad_mask") is not None else None,
                masked_decay=plan["weight_decay"],
            )
            scheduler.step()


def retain_finetune(
    model: nn.Module,
    task: UnlearnTask,
    *,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int = 64,
    stream: int = 100,
    penalty: Callable[[list[torch.Tensor], int], torch.Tensor] | None = None,
    grad_mask: Mapping[str, torch.Tensor] | None = None,
    data: Dataset | None = None,
) -> nn.Module:
    """:func:`finetune_loop` on one model (in place), for code outside a method's ``loop``."""
    plan = {
        "epochs": epochs, "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "batch_size": batch_size,
        "stream": stream, "penalty": penalty, "grad_mask": grad_mask, "data": data,
    }
    finetune_loop(OneModel(model, task), plan)
    return model.eval()


class FinetunePlanned(Unlearner):
    """A method that prepares each model (prune, reset, mask, relabel), then runs :func:`finetune_loop`.

    ``plan(model, task)`` does the method's own preparation on ``model`` in place and returns the
    fine-tuning settings (see :func:`finetune_loop`); it runs on each model alone
    (:meth:`Learner.each`), the loop runs on one model or vectorised over a stack.
    """

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict:
        raise NotImplementedError

    def loop(self, learner: Learner) -> None:
        finetune_loop(learner, learner.each(self.plan))


@register
class Finetune(FinetunePlanned):
    """FT: fine-tune on the retain set, ``min_theta E_{D_r} CE(f_theta(x), y)``."""

    name = "finetune"
    summary = "fine-tune on the retain set only"

    @dataclass(frozen=True)
    class Config(FinetuneSettings):
        pass

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict:
        return {**self.config.loop(), "stream": 100}
