"""Fine-tuning on the retain set (the "FT" baseline of the unlearning literature).

Continue training the original model on D_r only, minimising ``CE(f(x_r), y_r)``, so the
forget set's influence fades by catastrophic forgetting (Golatkar et al. CVPR 2020 use it as
the fine-tune baseline; Jia et al. 2023 and Fan et al. 2024 report it as "FT"; the NeurIPS 2023
challenge starting kit ships it: SGD, momentum 0.9, weight decay 5e-4, cosine schedule).
Several methods end with this step, so it is exposed as :func:`retain_finetune`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.training.loop import make_optimizer, make_scheduler, num_batches
from obliviate.unlearning.base import Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["Finetune", "FinetuneSettings", "FinetunePlanned", "retain_finetune", "run_finetune_plan"]


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
        """Keyword arguments for :func:`retain_finetune` (and ``random_label_finetune``)."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
        }


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
    params: Iterable[nn.Parameter] | None = None,
    penalty: Callable[[nn.Module, int], torch.Tensor] | None = None,
    grad_mask: dict[nn.Parameter, torch.Tensor] | None = None,
    data: Dataset | None = None,
) -> nn.Module:
    """SGD with a cosine schedule on ``CE(f(x), y) [+ penalty(model, epoch)]`` over D_r.

    ``data`` replaces D_r (random labels train on relabelled D_f plus D_r); ``params`` restricts
    which parameters move; ``grad_mask`` multiplies gradients elementwise before each step
    (1 = may change); weight decay is then added to the gradient before the mask, so masked-out
    weights stay exactly where they are. Used by finetune, l1_sparse, random labels, SalUn and the
    prune, reset and re-init methods.
    """
    data = task.retain if data is None else data
    trainable = list(params if params is not None else model.parameters())
    optimizer = make_optimizer(
        "sgd", trainable, lr=lr, momentum=momentum, weight_decay=0.0 if grad_mask is not None else weight_decay
    )
    steps = epochs * num_batches(len(data), batch_size)
    scheduler = make_scheduler("cosine", optimizer, steps)
    generator = task.generator(stream)
    model.train()
    for epoch in range(epochs):
        for x, y in task.batches(data, batch_size, generator=generator):
            loss = F.cross_entropy(model(x), y)
            if penalty is not None:
                loss = loss + penalty(model, epoch)
            optimizer.zero_grad(set_to_none=True)
            task.backward(loss, batch=len(y), lr=lr)
            if grad_mask is not None:
                for p in trainable:
                    if p.grad is not None:
                        p.grad.add_(p.detach(), alpha=weight_decay)
                        if p in grad_mask:
                            p.grad.mul_(grad_mask[p])
            optimizer.step()
            scheduler.step()
    return model.eval()


def run_finetune_plan(model: nn.Module, task: UnlearnTask, plan: dict) -> nn.Module:
    """:func:`retain_finetune` with the keyword arguments of a method's ``plan``.

    A plan names its ``grad_mask`` by parameter name (so the same plan fits any copy of the
    model, or a stack of them) and its ``penalty`` takes the list of parameter tensors and the
    epoch; here they are bound to ``model``.
    """
    kwargs = dict(plan)
    if kwargs.get("grad_mask") is not None:
        names = dict(model.named_parameters())
        kwargs["grad_mask"] = {names[n]: m for n, m in kwargs["grad_mask"].items()}
    if kwargs.get("penalty") is not None:
        penalty = kwargs["penalty"]
        kwargs["penalty"] = lambda m, epoch: penalty(list(m.parameters()), epoch)
    return retain_finetune(model, task, **kwargs)


class FinetunePlanned(Unlearner):
    """A method that prepares the model (prune, reset, mask, relabel), then runs :func:`retain_finetune`.

    ``plan(model, task)`` does the method's own preparation on ``model`` in place and returns the
    fine-tuning loop's keyword arguments; ``run`` is ``retain_finetune`` with them. Splitting the
    two lets :func:`obliviate.unlearning.unlearn_many` prepare each model of a stack with this
    same code and then run the fine-tuning loop, where the time goes, vectorised over the stack.
    """

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict:
        raise NotImplementedError

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        return run_finetune_plan(model, task, self.plan(model, task))


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
