"""DP-SGD training with Opacus: the ``DP`` privacy config of a recipe and the private training loop.

``Recipe(..., privacy=DP(epsilon=2.0, delta=1e-5))`` makes :func:`obliviate.train` run DP-SGD
(Abadi et al., "Deep Learning with Differential Privacy", CCS 2016, Algorithm 1): every step
draws a Poisson-sampled batch (each example independently with rate q = 1 / batches per
epoch), clips each per-example gradient to L2 norm ``max_grad_norm`` (C), sums them, adds
Gaussian noise N(0, sigma^2 C^2 I) and divides by the expected batch size. Opacus
(Yousefpour et al. 2021) computes the per-example gradients and picks sigma, the noise
multiplier, so that the accountant (``prv``: Gopi et al. 2021, numerical composition of
privacy random variables; ``rdp``: Mironov 2017; ``gdp``: Dong et al. 2019) reports at most
``epsilon`` after ``recipe.epochs`` epochs at ``delta``. After training the accountant's
``get_epsilon(delta)`` is the epsilon actually spent; it is stored with the model as a
:class:`PrivacyRecord` (``privacy_of(model)``), in the model spec that ``save_model`` writes.

The optimiser, learning rate, momentum, weight decay and schedule are the recipe's: they act on
the privatised gradient only, so they are post-processing and cost no privacy.

Determinism: Opacus's ``secure_mode`` (a cryptographic RNG, resistant to floating-point
attacks on the Gaussian sampler) cannot be seeded, so it is off; the Poisson sampler and the
noise draw from two generators seeded by the recipe seed (streams 1 and 2), and the same recipe
and data give bit-identical weights. For a deployment that must resist those attacks, retrain
with Opacus directly in secure mode.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import (
    InvalidInputError,
    PrivateModelError,
)
from obliviate.storage import spec_of
from obliviate.training.backends import register_private_trainer
from obliviate.training.loop import make_optimizer, make_scheduler, seeded_generator
from obliviate.training.privacy import ACCOUNTANTS, DP
from obliviate.training.trainer import run_epochs

__all__ = [
    "DP",
    "ACCOUNTANTS",
    "PrivacyRecord",
    "PrivateModelError",
    "train_private",
    "privacy_of",
    "attach_privacy",
]

_SAMPLER_STREAM = 1  # the non-private trainer's shuffling stream: same seed, same role
_NOISE_STREAM = 2


@dataclass(frozen=True)
class PrivacyRecord:
    """What a DP-SGD run spent and how: stored with the model.

    ``epsilon`` is the accountant's ``get_epsilon(delta)`` after the last step (at most
    ``target_epsilon``); ``noise_multiplier`` is sigma (noise std / ``max_grad_norm``);
    ``sample_rate`` the Poisson rate q; ``steps`` the optimiser steps taken; ``n`` the size of the
    training set. ``forgotten_ids`` lists the examples already "unlearned" by group privacy
    (``dp_sgd``), whose count enters the next request's group size.
    """

    epsilon: float
    delta: float
    target_epsilon: float
    noise_multiplier: float
    max_grad_norm: float
    accountant: str
    sample_rate: float
    steps: int
    n: int
    forgotten_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["forgotten_ids"] = list(self.forgotten_ids)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrivacyRecord:
        d = dict(d)
        d["forgotten_ids"] = tuple(int(i) for i in d.get("forgotten_ids", ()))
        return cls(**d)


_PRIVACY_KEY = "privacy"


def attach_privacy(model: nn.Module, record: PrivacyRecord) -> nn.Module:
    """Store ``record`` in the model's spec (``save_model`` writes the spec into the checkpoint header)."""
    spec = spec_of(model)
    if spec is None:
        raise InvalidInputError(
            "only a model built by obliviate (ob.train) carries a model spec to hold its privacy record."
        )
    spec[_PRIVACY_KEY] = record.to_dict()
    return model


def privacy_of(model: nn.Module) -> PrivacyRecord | None:
    """The :class:`PrivacyRecord` of a DP-SGD-trained model, or ``None`` for any other model."""
    spec = spec_of(model)
    if spec is None or _PRIVACY_KEY not in spec:
        return None
    return PrivacyRecord.from_dict(spec[_PRIVACY_KEY])


def _check_supported(model: nn.Module, name: str) -> None:
    from opacus.validators import ModuleValidator

    problems = ModuleValidator.validate(model, strict=False)
    if problems:  # Opacus explains at length; its first sentence names the problem
        unique = list(dict.fromkeys(str(p).split(".")[0].strip() for p in problems))
        raise PrivateModelError(name, unique[:3] + ([f"and {len(unique) - 3} more"] if len(unique) > 3 else []))


def _quiet() -> None:
    """Silence Opacus's and torch's expected notices (inside ``warnings.catch_warnings``)."""
    warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")  # off on purpose: see the module doc
    warnings.filterwarnings("ignore", message=".*Optimal order is the (largest|smallest) alpha.*")
    # Opacus's per-sample hooks fire on the first layer, whose input needs no gradient.
    warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")


def train_private(
    model: nn.Module, data: Dataset, *, recipe: Any, where: str = "DP-SGD training", show_progress: bool = False
) -> tuple[nn.Module, PrivacyRecord]:
    """Train ``model`` with DP-SGD to ``recipe.privacy``'s (epsilon, delta); returns the plain module and its record.

    ``PrivacyEngine(accountant=...).make_private_with_epsilon(module=, optimizer=, data_loader=,
    target_epsilon=, target_delta=, epochs=recipe.epochs, max_grad_norm=)`` with Poisson sampling
    (sample rate ``1 / ceil(n / batch_size)``); the returned module is unwrapped from Opacus's
    ``GradSampleModule`` with its hooks and per-sample attributes removed.
    """
    dp: DP = recipe.privacy
    n = len(data)
    if dp.delta >= 1.0 / n:
        raise InvalidInputError(
            f"DP.delta = {dp.delta:g} is not below 1/n = {1.0 / n:.3g} for {n} training examples: such a delta allows "
            "releasing a whole example. Choose delta < 1/n (1e-5 is usual)."
        )
    from opacus import PrivacyEngine

    _check_supported(model, recipe.model)
    data = data.sorted_by_id()
    X, y = data.tensors
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y),
        batch_size=recipe.batch_size,
        generator=seeded_generator(recipe.seed, stream=_SAMPLER_STREAM),  # DPDataLoader's Poisson sampler uses it
    )
    optimizer = make_optimizer(
        recipe.optimizer, model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    with warnings.catch_warnings():
        _quiet()
        engine = PrivacyEngine(accountant=dp.accountant, secure_mode=False)
        private, optimizer, loader = engine.make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            target_epsilon=dp.epsilon,
            target_delta=dp.delta,
            epochs=recipe.epochs,
            max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,
            noise_generator=seeded_generator(recipe.seed, stream=_NOISE_STREAM),
        )
    steps_per_epoch = len(loader)
    scheduler = make_scheduler(recipe.schedule, optimizer, steps_per_epoch * recipe.epochs)
    private.train()
    with warnings.catch_warnings():
        _quiet()
        # An empty Poisson batch still takes its (pure-noise) step, as the accounting assumes.
        step = run_epochs(
            private,
            lambda: loader,
            optimizer,
            scheduler,
            epochs=recipe.epochs,
            lr=recipe.lr,
            where=where,
            show_progress=show_progress,
        )
    with warnings.catch_warnings():
        _quiet()
        spent = float(engine.get_epsilon(dp.delta))
    record = PrivacyRecord(
        epsilon=spent,
        delta=dp.delta,
        target_epsilon=dp.epsilon,
        noise_multiplier=float(optimizer.noise_multiplier),
        max_grad_norm=dp.max_grad_norm,
        accountant=dp.accountant,
        sample_rate=1.0 / steps_per_epoch,
        steps=step,
        n=n,
    )
    plain = private.to_standard_module()
    for p in plain.parameters():
        p.grad = None
        for attr in ("summed_grad", "grad_sample"):
            if hasattr(p, attr):
                delattr(p, attr)
    return plain.eval(), record


def _train_and_attach(model: nn.Module, data: Dataset, *, recipe: Any, show_progress: bool = False) -> nn.Module:
    """The trainer's entry for ``Recipe(privacy=DP(...))``: DP-SGD, then the record stored in the model spec."""
    model, record = train_private(model, data, recipe=recipe, show_progress=show_progress)
    return attach_privacy(model, record)


register_private_trainer(_train_and_attach)

