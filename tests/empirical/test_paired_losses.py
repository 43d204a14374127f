"""One optimiser step of NegGrad+ and kl_retain equals the hand-written loss's gradient step.

With one retain batch and one forget batch, plain SGD (no momentum, no weight decay) and one
epoch, the unlearned weights are theta - lr * grad(loss) for the paper's loss on the whole sets.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import obliviate as ob


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=24)
    data = ob.data.from_arrays(X, y, num_classes=3)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    request = ob.ForgetRequest(ids=data.ids[:6])
    return data, model, request


def _one_step(model, loss, lr):
    expected = copy.deepcopy(model)
    grads = torch.autograd.grad(loss(expected), list(expected.parameters()))
    with torch.no_grad():
        for p, g in zip(expected.parameters(), grads, strict=True):
            p -= lr * g
    return expected


ONE_STEP = {"epochs": 1, "momentum": 0.0, "weight_decay": 0.0, "stop_accuracy": -1.0,
            "retain_batch_size": 64, "forget_batch_size": 64, "lr": 0.1}


def test_neggrad_plus_step_is_beta_retain_minus_one_minus_beta_forget(tiny):
    data, model, request = tiny
    forget, retain = request.split(data)
    beta = 0.8
    result = ob.unlearn(model, request, data, method="neggrad_plus", settings={**ONE_STEP, "beta": beta})

    def loss(m):
        return beta * F.cross_entropy(m(retain.tensors[0]), retain.tensors[1]) - (1 - beta) * F.cross_entropy(
            m(forget.tensors[0]), forget.tensors[1]
        )

    expected = _one_step(model, loss, 0.1)
    for p, q in zip(result.model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert result.cost.gradient_steps == 1


def test_kl_retain_first_step_ascends_the_weighted_forget_loss(tiny):
    # at the first step the student is the original, so KL(p_original || p_student) has zero gradient
    data, model, request = tiny
    forget, _ = request.split(data)
    result = ob.unlearn(model, request, data, method="kl_retain", settings={**ONE_STEP, "forget_weight": 0.3})
    expected = _one_step(model, lambda m: -0.3 * F.cross_entropy(m(forget.tensors[0]), forget.tensors[1]), 0.1)
    for p, q in zip(result.model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
