"""Re-initialise the weights the forget-vs-retain gradient barely touches, then fine-tune with the rest slowed.

The second entry of the NeurIPS 2023 unlearning competition ("Kookmin"; Triantafillou et al.
2024, "Are we making progress in unlearning? Findings from the first NeurIPS unlearning
competition", arXiv 2406.09073, Sec. 5 and App. C), as re-implemented beside the other top-7
entries (the ``munl`` package, class ``KGLTop2``, ``re_init_model_snip_ver2_little_grad``):

1. ``g = sum_b grad CE(f(x_r,b), y_r,b) - sum_b grad CE(f(x_f,b), y_f,b)``, summed (not averaged)
   over batches of 64 of a random retain subset as large as D_f and over D_f;
2. per feature layer, the ``init_rate`` share of its weights with the *smallest* ``|g|`` take fresh
   Kaiming-normal values (``fan_out``, ReLU gain); a gradient mask multiplies the gradient of the
   re-initialised entries by 1 and of all others by 0.1 for the rest of the run;
3. SGD (momentum 0.9, weight decay 5e-4, added after the mask) on ``CE(f(x_r), y_r)`` over D_r
   for ``epochs`` epochs, the learning rate rising linearly for ``(epochs + 1) // 2`` epochs and
   falling linearly to 0 at ``epochs + 1`` (per-epoch steps).

Published: init_rate 0.3, 5 epochs, lr 0.001, batch 64. The reference applies step 2 to every
convolution of a ResNet-18 (its only linear layer is the classifier head); here "feature layer"
means every Conv layer and every Linear layer except the last parametrised layer (the head), so
an MLP's hidden layers play the role of the convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.models import parametrised_layers
from obliviate.training.loop import make_optimizer
from obliviate.unlearning.base import Learner, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["SnipReinit", "feature_weights", "forget_retain_gradient"]

_STREAM = 4321  # retain subset 4321, retain order 4322, forget order 4323, init 4324, fine-tuning 4325


def feature_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights of Conv layers and of Linear layers other than the last parametrised layer."""
    layers = parametrised_layers(model)
    head = layers[-1][0] if layers else None
    out = {}
    for name, layer in layers:
        is_conv = isinstance(layer, nn.modules.conv._ConvNd)
        if is_conv or (isinstance(layer, nn.Linear) and name != head):
            out[f"{name}.weight" if name else "weight"] = layer.weight
    return out


def forget_retain_gradient(model: nn.Module, task: UnlearnTask, batch_size: int) -> dict[str, torch.Tensor]:
    """``sum_b grad CE(retain subset b) - sum_b grad CE(D_f b)`` at the current weights (training mode, as
    the reference); the retain subset is ``|D_f|`` examples drawn without replacement by the run's seed."""
    g = task.generator(_STREAM)
    pick = torch.randperm(len(task.retain), generator=g)[: len(task.forget)].numpy()
    subset = task.retain.subset(task.retain.ids[pick])
    model.train()
    model.zero_grad(set_to_none=True)
    for sign, data, stream in ((1.0, subset, _STREAM + 1), (-1.0, "forget", _STREAM + 2)):
        for x, y in task.batches(data, batch_size, generator=task.generator(stream)):
            task.backward(sign * F.cross_entropy(model(x), y), batch=len(y))
    grads = {
        name: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        for name, p in model.named_parameters()
    }
    model.zero_grad(set_to_none=True)
    return grads


@register
class SnipReinit(Unlearner):
    """Kookmin's re-initialise-the-untouched-weights then masked fine-tuning (equations in the module docstring).

    ``slow`` is the gradient factor of the weights not re-initialised (published 0.1). Defaults: chosen
    on the validation protocol of ``benchmarks/nips_search.py`` (digits MLP, challenge protocol with 64
    models a side, a forget draw, original and seeds the scoreboard does not use; the best final score
    within 10% of retraining's gradient work), by
    ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nips_search.py --models 64 --draws 1 --grid round1``
    and ``--grid round2``:
    init_rate 0.3
    (as published), 2 epochs at lr 0.1, slow 1.0 (validation score 0.077 against the split-half
    reference's 0.182; slow 0.1 scored 0.010 with the same other values).
    The robust protocol (3 draws of forget set, original and seeds; ``--draws 3 --grid robust``) chose the
    same values: mean validation score 0.0534 (sd 0.0216 over the draws, the largest spread of the five);
    init_rate 0.6 with 3 epochs averaged 0.060 but costs 0.107 of retraining's work, over the budget;
    see RESULTS.md, ``nips-leaders``.
    """

    name = "snip_reinit"
    summary = "re-init the weights with the smallest forget-vs-retain gradient, then fine-tune (NeurIPS'23 2nd)"

    @dataclass(frozen=True)
    class Config:
        init_rate: float = 0.3
        epochs: int = 2
        lr: float = 0.1
        momentum: float = 0.9
        weight_decay: float = 5e-4
        batch_size: int = 64
        slow: float = 1.0

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if not 0.0 <= c.init_rate <= 1.0:
            raise InvalidInputError(
                f"snip_reinit.init_rate must be in [0, 1] (share re-initialised per layer), got {c.init_rate}."
            )
        if not 0.0 <= c.slow <= 1.0:
            raise InvalidInputError(
                f"snip_reinit.slow must be in [0, 1] (gradient factor of kept weights), got {c.slow}."
            )

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict[str, Any]:
        c = self.config
        weights = feature_weights(model)
        if not weights:
            raise InvalidInputError(
                "snip_reinit found no feature layer (a Conv, or a Linear before the head) to re-initialise; "
                "use a model with at least two layers, or reset_layers."
            )
        grads = forget_retain_gradient(model, task, c.batch_size)
        gen = task.generator(_STREAM + 3)
        masks = {}
        with torch.no_grad():
            for name, w in weights.items():
                k = round(c.init_rate * w.numel())
                chosen = torch.zeros(w.numel(), dtype=torch.bool)
                if k:
                    chosen[torch.topk(-grads[name].abs().reshape(-1), k).indices] = True
                chosen = chosen.reshape(w.shape)
                fresh = torch.empty_like(w)
                fan_out = w.shape[0] * (w[0, 0].numel() if w.ndim > 2 else 1)
                fresh.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=gen)  # kaiming_normal_(fan_out, relu)
                w.copy_(torch.where(chosen, fresh, w))
                masks[name] = torch.where(chosen, 1.0, c.slow).to(w.dtype)
        return {"grad_mask": masks}

    def loop(self, learner: Learner) -> None:
        c = self.config
        plans = learner.each(self.plan)
        masks = learner.field(plans, "grad_mask")
        optimizer = make_optimizer(
            "sgd", learner.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        rise, total = (c.epochs + 1) // 2, c.epochs + 1
        generator = learner.generator(_STREAM + 4)

        def retain_ce(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x), y)

        for epoch in range(c.epochs):
            count = epoch + 1  # the reference's LinearAnnealingLR._step_count during this epoch
            factor = count / rise if count <= rise else (total - count) / (total - rise)
            for group in optimizer.param_groups:
                group["lr"] = c.lr * factor
            for x, y in learner.batches("retain", c.batch_size, generator=generator):
                learner.loss(retain_ce, x, y)
                learner.step(optimizer, batch=y.shape[-1], masks=masks, masked_decay=0.0)
