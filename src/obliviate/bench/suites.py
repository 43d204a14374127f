"""Benchmark suites: a dataset, a recipe, forget scenarios, methods and seeds.

The default suite, ``digits``, needs no download: scikit-learn's bundled handwritten digits,
an MLP, and two scenarios from the unlearning literature: forgetting a random 10% of the
training set (the NeurIPS 2023 challenge's setting, where the retrained model still predicts the
forgotten examples well) and forgetting a whole class (where it cannot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from obliviate.data.dataset import Dataset
from obliviate.data.loaders import digits, synthetic
from obliviate.errors import InvalidInputError
from obliviate.training.recipe import Recipe

__all__ = ["Scenario", "Suite", "SUITES", "get_suite", "DEFAULT_METHODS"]


@dataclass(frozen=True)
class Scenario:
    """A named rule that picks the forget ids from the training set."""

    name: str
    description: str
    select: Callable[[Dataset], np.ndarray]


def random_fraction(fraction: float, seed: int = 0) -> Scenario:
    pct = int(round(fraction * 100))
    return Scenario(
        f"random-{pct}pct",
        f"a random {pct}% of the training examples (seed {seed})",
        lambda train: train.sample_ids(fraction, seed=seed),
    )


def whole_class(label: int) -> Scenario:
    return Scenario("class-forget", f"every training example of class {label}", lambda train: train.ids_of_class(label))


DEFAULT_METHODS: tuple[str, ...] = (
    "finetune",
    "gradient_ascent",
    "neggrad_plus",
    "random_label",
    "kl_retain",
    "scrub",
    "l1_sparse",
    "salun",
    "ssd",
    "prune_finetune",
    "reset_layers",
    "reinit_finetune",
    # NeurIPS 2023 unlearning competition leaders (defaults chosen on benchmarks/nips_search.py's validation protocol)
    "prune_reinit",
    "noise_finetune",
    "reset_distill",
    "uniform_contrast",
    "snip_reinit",
)



@dataclass(frozen=True)
class Suite:
    """Everything a benchmark run fixes before methods are compared."""

    name: str
    description: str
    load: Callable[[], tuple[Dataset, Dataset]]
    recipe: Recipe
    scenarios: tuple[Scenario, ...]
    methods: tuple[str, ...] = DEFAULT_METHODS
    seeds: int = 10
    notes: dict = field(default_factory=dict)


def _digits_split() -> tuple[Dataset, Dataset]:
    return digits().split(test_size=0.25, seed=0)


def _synthetic_split() -> tuple[Dataset, Dataset]:
    return synthetic(20_000, 32, 10, seed=0).split(test_size=0.2, seed=0)


SUITES: dict[str, Suite] = {
    "digits": Suite(
        name="digits",
        description="scikit-learn's bundled 8x8 digits (1,347 train / 450 test), MLP 64-128-64-10",
        load=_digits_split,
        recipe=Recipe(model="mlp", epochs=30, lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=64, seed=0),
        scenarios=(random_fraction(0.1), whole_class(3)),
    ),
    "certified": Suite(
        name="certified",
        description=(
            "digits, L2 logistic regression with loss perturbation (Guo et al. 2020): certified Newton removal; "
            "the oracle is the solver on the retained data with the same noise draw b, so the gap measures the "
            "Newton step (a retrain with fresh noise differs by the noise: see the certified-removal benchmark)"
        ),
        load=_digits_split,
        recipe=Recipe(
            model="certified_logreg",
            model_options={"lam": 0.1, "sigma": 1.0, "epsilon": 1.0, "delta": 1e-4},
        ),
        scenarios=(random_fraction(0.1), whole_class(3)),
        methods=("certified_newton",),
    ),
    "d2d": Suite(
        name="d2d",
        description="digits, L2 softmax regression by projected GD (Neel et al. 2021): Descent-to-Delete",
        load=_digits_split,
        recipe=Recipe(
            model="d2d_logreg",
            model_options={"lam": 3e-3, "iterations": 1200, "epsilon": 1.0, "delta": 1e-5},
        ),
        scenarios=(random_fraction(0.1), whole_class(3)),
        methods=("descent_to_delete",),
        seeds=6,
    ),
    "digits-dp": Suite(
        name="digits-dp",
        description="digits, MLP 64-64-10 trained with DP-SGD at epsilon 1 (Opacus, PRV accountant): group privacy",
        load=_digits_split,
        recipe=Recipe(
            model="mlp",
            model_options={"hidden": (64,)},
            epochs=10,
            lr=1.0,
            momentum=0.0,
            weight_decay=0.0,
            privacy={"epsilon": 1.0, "delta": 1e-5},
        ),
        scenarios=(random_fraction(0.1), whole_class(3)),
        methods=("dp_sgd",),
        seeds=6,
    ),
    "synthetic": Suite(
        name="synthetic",
        description="a seeded 10-class Gaussian mixture (16,000 train / 4,000 test, 32 features), MLP",
        load=_synthetic_split,
        recipe=Recipe(model="mlp", epochs=10, lr=0.05, batch_size=128, seed=0),
        scenarios=(random_fraction(0.1), whole_class(3)),
        seeds=3,
    ),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise InvalidInputError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}.")
    return SUITES[name]
