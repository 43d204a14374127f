"""shrink_distill's pieces: shrink and perturb, and the confidence matching of the last layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.empirical.reset_layers import fresh_layers
from obliviate.empirical.shrink_distill import match_confidence, mean_confidence, shrink_perturb
from obliviate.evaluation import logit_scaled_confidence
from obliviate.models import build_model, parametrised_layers


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("mlp", (64,), 10, options={"hidden": (16, 8)})


def test_shrink_perturb_mixes_the_weights_with_a_fresh_draw():
    model, before = _mlp(0), _mlp(0)
    fresh = fresh_layers(parametrised_layers(_mlp(0)), seed=123)
    shrink_perturb(model, 0.3, 0.5, seed=123)
    for (_, layer), (_, old), new in zip(parametrised_layers(model), parametrised_layers(before), fresh, strict=True):
        for p, q, r in zip(layer.parameters(), old.parameters(), new.parameters(), strict=True):
            assert torch.allclose(p, 0.3 * q + 0.5 * r, atol=1e-7)
    full = _mlp(0)
    shrink_perturb(full, 0.0, 1.0, seed=123)  # a full re-initialisation: the fresh draw itself
    for (_, layer), new in zip(parametrised_layers(full), fresh, strict=True):
        for p, r in zip(layer.parameters(), new.parameters(), strict=True):
            assert torch.equal(p, r)
    same = _mlp(0)
    shrink_perturb(same, 1.0, 0.0, seed=5)  # shrink 1, perturb 0 leaves the model as it was
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), before.state_dict().values(), strict=True))


def test_match_confidence_scales_the_head_to_the_originals_mean_confidence(train_set):
    X, y = train_set.tensors
    original = ob.train(ob.Recipe(model="mlp", epochs=5, batch_size=64, model_options={"hidden": (16,)}), train_set)
    student = _mlp_like(original, seed=1)
    with torch.no_grad():
        before = student(X)
    c = match_confidence(student, mean_confidence(original, X, y), X, y)
    with torch.no_grad():
        after = student.eval()(X)
        target = original.eval()(X)
    assert c > 0 and not np.isclose(c, 1.0)
    assert torch.allclose(after, before * c, rtol=1e-5, atol=1e-5)  # only the logits' scale changed
    mean = lambda z: float(logit_scaled_confidence(z.double().numpy(), y.numpy()).mean())  # noqa: E731
    assert mean(after) == pytest.approx(mean(target), abs=1e-3)
    assert abs(mean(before) - mean(target)) > 0.1  # it had something to match


def _mlp_like(original: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``original`` shrunk halfway to a fresh draw (same function family, another logit scale)."""
    import copy

    model = copy.deepcopy(original)
    shrink_perturb(model, 0.5, 0.5, seed=seed)
    return model
