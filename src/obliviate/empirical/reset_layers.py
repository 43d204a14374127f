"""Reset the first or last k parametrised layers to a fresh initialisation, then fine-tune on D_r.

An idea from the NeurIPS 2023 unlearning challenge (Triantafillou et al. 2024, "Are we making
progress in unlearning? Findings from the first NeurIPS unlearning competition", arXiv
2406.09073): several top entries re-initialise part of the network and retrain it on the retain
set (e.g. the 8th-place entry of Ahn et al., "stochastic re-initialization" of layers followed by
fine-tuning). Resetting destroys whatever those layers stored about D_f; fine-tuning on D_r
alone rebuilds them from the retained data only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from obliviate.empirical.finetune import FinetunePlanned, FinetuneSettings
from obliviate.errors import InvalidInputError
from obliviate.models import parametrised_layers
from obliviate.training.loop import seeded_global_rng
from obliviate.unlearning.base import UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["ResetLayers", "fresh_layers", "select_layers"]

_STREAM = 4141  # init seed; 4142 orders the fine-tuning batches


def fresh_layers(layers: Sequence[tuple[str, nn.Module]], seed: int) -> list[nn.Module]:
    """Copies of ``layers`` re-initialised by their own ``reset_parameters`` under ``seed``.

    The draws happen in a forked RNG seeded with ``seed`` (the global RNG is untouched), in the
    order given, so the same layers and seed give the same fresh weights.
    """
    fresh = []
    with seeded_global_rng(seed):
        for name, layer in layers:
            if not callable(getattr(layer, "reset_parameters", None)):
                raise InvalidInputError(
                    f"layer {name!r} ({type(layer).__name__}) has no reset_parameters(), so it cannot be "
                    "re-initialised; choose layers built from torch.nn modules (Linear, Conv, BatchNorm)."
                )
            new = copy.deepcopy(layer)
            new.reset_parameters()
            fresh.append(new)
    return fresh


def select_layers(model: nn.Module, which: str, k: int, *, method: str) -> list[tuple[str, nn.Module]]:
    """The first or last ``k`` of :func:`obliviate.models.parametrised_layers` (forward-definition order)."""
    layers = parametrised_layers(model)
    if k > len(layers):
        raise InvalidInputError(
            f"{method}.k = {k} but the model has only {len(layers)} parametrised layers "
            f"({', '.join(n for n, _ in layers)}); use k <= {len(layers)}."
        )
    return layers[:k] if which == "first" else layers[-k:]


def init_seed(task: UnlearnTask, stream: int) -> int:
    """A torch seed for this run's ``stream`` (the stream's generator's seed)."""
    return int(task.generator(stream).initial_seed())


@register
class ResetLayers(FinetunePlanned):
    """Re-initialise the ``k`` first or last parametrised layers, then ``retain_finetune``.

    ``theta_l <- theta_l^init`` for the chosen layers ``l`` (each layer's own ``reset_parameters``,
    seeded from the run's seed), then SGD with a cosine schedule on ``CE(f(x_r), y_r)`` over D_r.
    Defaults are chosen for the digits MLP bench (no published values exist for this idea):
    resetting the last layer (the classifier head) and 5 fine-tuning epochs at lr 0.05 (the
    bench recipe's rate) keep the cost under a fifth of retraining.
    """

    name = "reset_layers"
    summary = "re-initialise the first or last k layers, then fine-tune on the retain set"

    @dataclass(frozen=True)
    class Config(FinetuneSettings):
        which: str = "last"
        k: int = 1
        epochs: int = 5
        lr: float = 0.05

    def validate_config(self) -> None:
        super().validate_config()
        if self.config.which not in ("first", "last"):
            raise InvalidInputError(f"reset_layers.which must be 'first' or 'last', got {self.config.which!r}.")
        if self.config.k < 1:
            raise InvalidInputError(f"reset_layers.k must be >= 1 (layers to reset), got {self.config.k}.")

    def plan(self, model: nn.Module, task: UnlearnTask) -> dict:
        c = self.config
        chosen = select_layers(model, c.which, c.k, method=self.name)
        with torch.no_grad():
            for (_, layer), fresh in zip(chosen, fresh_layers(chosen, init_seed(task, _STREAM)), strict=True):
                for p, q in zip(layer.parameters(), fresh.parameters(), strict=True):
                    p.copy_(q)
                for b, q in zip(layer.buffers(), fresh.buffers(), strict=True):
                    b.copy_(q)
        return {**c.loop(), "stream": _STREAM + 1}
