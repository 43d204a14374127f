"""ob.train's results pinned: a speed-up of the training loop must not change a single bit.

The hashes were recorded from the loop as it was before the per-step overhead was removed
(issue 16, item 3), at one torch thread (the suite's setting, tests/conftest.py).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.errors import DivergedError

PINNED = {
    "mlp-sgd": (
        ob.Recipe(model="mlp", epochs=2, seed=0),
        "83abc48705d288fe95c0146f6cbd47d088dff965d0bfa8a6175832c82143a168",
    ),
    "mlp-adam-cosine-ragged": (
        ob.Recipe(
            model="mlp",
            optimizer="adam",
            lr=1e-3,
            schedule="cosine",
            epochs=3,
            batch_size=48,
            seed=3,
            model_options={"hidden": (32,)},
        ),
        "0bfc123bb11d4cea966f1774f0744c53ebecb51e749d08a15fdc5931925bc208",
    ),
    "cnn-step": (
        ob.Recipe(model="cnn", schedule="step", epochs=1, batch_size=32, seed=1, model_options={"width": 8}),
        "066d239126808e8e1c19c465ca813848e55c11d5ba9912cbbcd84ffb3ca17b57",
    ),
}


def weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_trained_weights_match_the_pinned_hash(name, small_train):
    recipe, expected = PINNED[name]
    assert torch.get_num_threads() == 1
    assert weights_hash(ob.train(recipe, small_train)) == expected


@pytest.mark.parametrize(("lr", "step"), [(1e8, 2), (100.0, 17), (500.0, 4)])
def test_divergence_is_reported_at_the_first_non_finite_step(lr, step, small_train):
    with pytest.raises(DivergedError) as info:
        ob.train(ob.Recipe(epochs=3, lr=lr), small_train)
    assert info.value.step == step and not np.isfinite(info.value.value)
