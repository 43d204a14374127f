"""Model builders, found by name: ``build_model("mlp", input_shape, num_classes, **options)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from obliviate.errors import InvalidInputError, UnknownModelError
from obliviate.models.cnn import SmallCNN
from obliviate.models.mlp import MLP
from obliviate.models.resnet import ResNet18
from obliviate.seeding import seeded_global_rng

__all__ = ["MLP", "SmallCNN", "ResNet18", "MODELS", "SOLVER_MODELS", "KNOWN_MODELS", "build_model", "parametrised_layers"]

MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "cnn": SmallCNN, "resnet18": ResNet18}
# Convex models fitted by their own certified solvers (obliviate.certified.solvers), not built then trained.
SOLVER_MODELS: tuple[str, ...] = ("certified_logreg", "certified_logreg_stored", "d2d_logreg")
KNOWN_MODELS: tuple[str, ...] = (*MODELS, *SOLVER_MODELS)


def build_model(
    name: str, input_shape: Sequence[int], num_classes: int, *, seed: int = 0, options: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build architecture ``name`` with weights initialised from ``seed`` (global RNG untouched)."""
    if name in SOLVER_MODELS:
        raise InvalidInputError(f"{name!r} is fitted by its certified solver: train it with ob.train(recipe, data).")
    if name not in MODELS:
        raise UnknownModelError(name, KNOWN_MODELS)
    with seeded_global_rng(seed):
        try:
            return MODELS[name](input_shape, num_classes, **dict(options or {}))
        except TypeError as exc:
            raise InvalidInputError(f"bad options for model {name!r}: {exc}") from exc


def parametrised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules that own weights (Linear, Conv, BatchNorm...), in forward-definition order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
    ]
