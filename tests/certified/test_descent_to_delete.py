"""Descent-to-Delete: the sigma and iteration bounds, GD contraction, seeded noise, bad input."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import obliviate as ob
from obliviate.certified.descent_to_delete import (
    DescentToDeleteLogistic,
    LossConstants,
    batch_iterations,
    d2d_epsilon,
    d2d_sigma,
    descent_to_delete_update,
    initial_iterations,
    iterations_for_sigma,
    logistic_constants,
    projected_gd,
    train_descent_to_delete,
)
from obliviate.errors import InvalidInputError, UnknownIdsError, UnsupportedModelError
from obliviate.unlearning.base import Guarantee
from obliviate.unlearning.registry import available_methods, make_method

# gamma = (1.5 - 0.5) / (1.5 + 0.5) = 1/2; log(1/delta) = 1 and epsilon = 3 make the gap sqrt(4) - sqrt(1) = 1.
HAND = LossConstants(m=0.5, M=1.5, L=1.0, radius=1.0)
E_DELTA = math.exp(-1.0)


@pytest.fixture(scope="module")
def small():
    """150 points, 5 features, 3 classes."""
    return ob.data.synthetic(150, 5, 3, seed=0)


@pytest.fixture(scope="module")
def small_model(small):
    return train_descent_to_delete(small, lam=0.05, iterations=20, seed=0)


def test_sigma_matches_the_hand_computed_case():
    # T=1: 4 sqrt2 * 1 * (1/2) / (0.5 * 10 * (1/2) * 1) = 2 sqrt2 / 2.5
    assert d2d_sigma(1, 10, 3.0, E_DELTA, HAND) == pytest.approx(2 * math.sqrt(2) / 2.5, rel=1e-12)
    # T=2: gamma^2 / (1 - gamma^2) = 1/3 -> 4 sqrt2 / 3 / 5
    assert d2d_sigma(2, 10, 3.0, E_DELTA, HAND) == pytest.approx(4 * math.sqrt(2) / 15, rel=1e-12)
    assert d2d_epsilon(4 * math.sqrt(2) / 15, 2, 10, E_DELTA, HAND) == pytest.approx(3.0, rel=1e-12)
    assert iterations_for_sigma(0.5, 10, 3.0, E_DELTA, HAND) == 2  # sigma(1) = 1.13 > 0.5 >= sigma(2) = 0.377
    # T_0 = T + ceil(log(D m n / 2L) / log 2) = T + ceil(log2(5)) = T + 3
    assert initial_iterations(4, 10, HAND) == 7
    # k = 3 at T = 1: log(1/2 + 3/2) / log 2 = 1 extra step; one update needs exactly T
    assert batch_iterations(1, 3, HAND) == 2 and batch_iterations(5, 1, HAND) == 5


def test_sigma_grows_as_the_data_shrinks_and_falls_with_T():
    c = logistic_constants(0.01, 10)
    assert c.m == 0.01 and c.M == pytest.approx(1.01) and c.radius == pytest.approx(math.sqrt(200 * math.log(10)))
    assert c.L == pytest.approx(2 + 0.01 * c.radius)
    sig = [d2d_sigma(300, n, 1.0, 1e-5, c) for n in (1000, 900, 500)]
    assert sig[0] < sig[1] < sig[2] and sig[2] == pytest.approx(2 * sig[0])
    assert d2d_sigma(400, 1000, 1.0, 1e-5, c) < sig[0]
    t = iterations_for_sigma(0.01, 1000, 1.0, 1e-5, c)
    assert d2d_sigma(t, 1000, 1.0, 1e-5, c) <= 0.01 < d2d_sigma(t - 1, 1000, 1.0, 1e-5, c)


def test_gradient_descent_reaches_sklearns_minimiser(small, small_model):
    from sklearn.linear_model import LogisticRegression

    phi = small_model.features(torch.as_tensor(small.X, dtype=torch.float64))
    onehot = F.one_hot(torch.as_tensor(small.y), 3).double()
    W = projected_gd(small_model.secret, phi, onehot, 0.05, small_model.constants, 800)
    sk = LogisticRegression(C=1.0 / (0.05 * len(small)), fit_intercept=False, tol=1e-10, max_iter=10_000)
    sk.fit(phi.numpy(), small.y)
    assert np.abs(W.numpy() - sk.coef_).max() < 1e-4


def test_deletion_contracts_towards_the_minimiser_on_the_remaining_data(small, small_model):
    forget = small.sample_ids(3, seed=1)
    rest = small.without(forget)
    phi = small_model.features(torch.as_tensor(rest.X, dtype=torch.float64))
    onehot = F.one_hot(torch.as_tensor(rest.y), 3).double()
    exact = projected_gd(small_model.secret, phi, onehot, 0.05, small_model.constants, 1500)
    gamma = small_model.constants.gamma
    d0 = float((small_model.secret - exact).norm())
    assert d0 > 1e-3  # the deletion moved the minimiser
    dists = []
    for t in (1, 4, 16, 64):
        model = copy.deepcopy(small_model)
        model.iterations = t
        descent_to_delete_update(model, small, delete=forget, epsilon=1.0, delta=1e-5)
        dist = float((model.secret - exact).norm())
        assert dist <= gamma**t * d0 * (1 + 1e-9) + 1e-12
        dists.append(dist)
    assert all(a > b for a, b in zip(dists, dists[1:], strict=False))
    assert dists[-1] < 1e-2 * d0


def test_noise_is_seeded_and_has_the_published_scale():
    data = ob.data.synthetic(200, 40, 5, seed=3)
    a = train_descent_to_delete(data, lam=0.05, iterations=2, seed=7)
    b = train_descent_to_delete(data, lam=0.05, iterations=2, seed=7)
    c = train_descent_to_delete(data, lam=0.05, iterations=2, seed=8)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.secret, b.secret)
    assert not torch.equal(a.weight, c.weight) and torch.equal(a.secret, c.secret)
    noise = a.weight.detach().double() - a.secret
    assert a.sigma == pytest.approx(d2d_sigma(2, 200, 1.0, 1e-5, a.constants))
    assert float(noise.std()) == pytest.approx(a.sigma, rel=0.15)  # 205 draws
    forget = data.sample_ids(2, seed=0)
    r1 = ob.unlearn(a, forget, data, method="descent_to_delete", seed=3)
    r2 = ob.unlearn(a, forget, data, method="descent_to_delete", seed=3)
    r3 = ob.unlearn(a, forget, data, method="descent_to_delete", seed=4)
    assert torch.equal(r1.model.weight, r2.model.weight) and not torch.equal(r1.model.weight, r3.model.weight)
    assert torch.equal(r1.model.secret, r3.model.secret)


def test_deleting_atypical_points_lowers_the_fit_to_them_like_retraining():
    base = ob.data.synthetic(150, 5, 3, seed=0)
    y = base.y.copy()
    idx = np.flatnonzero(y == 0)[:5]
    y[idx] = 1  # five class-0 points labelled 1: atypical for their label
    data = ob.data.from_arrays(base.X, y, num_classes=3)
    forget = data.ids[idx]
    model = train_descent_to_delete(data, lam=0.01, iterations=600, seed=0)
    result = ob.unlearn(model, forget, data, method="descent_to_delete")
    retrained = train_descent_to_delete(data.without(forget), lam=0.01, iterations=600, seed=0)

    def loss(m: nn.Module) -> float:
        with torch.no_grad():
            return F.cross_entropy(m(torch.as_tensor(data.X[idx])), torch.as_tensor(y[idx])).item()

    assert loss(result.model) > loss(model) + 0.3
    assert loss(result.model) == pytest.approx(loss(retrained), abs=0.02)


def test_registered_certified_and_chains(small, small_model):
    assert "descent_to_delete" in available_methods()
    method = make_method("descent_to_delete", {"epsilon": 0.5, "delta": 1e-6})
    assert method.guarantee == Guarantee("certified", 0.5, 1e-6)
    first = ob.unlearn(small_model, [3], small, method=method)
    second = ob.unlearn(first.model, [5, 9], small, method="descent_to_delete")
    assert first.guarantee == Guarantee("certified", 0.5, 1e-6) and first.model.epsilon == 0.5
    assert len(second.model.held_ids) == len(small) - 3
    assert second.model.deleted_ids.tolist() == [3, 5, 9]
    assert second.cost.gradient_steps == batch_iterations(20, 2, small_model.constants) > 20
    # the default settings keep the privacy level the model was last published at
    assert second.model.sigma == pytest.approx(d2d_sigma(20, len(small) - 3, 0.5, 1e-6, small_model.constants))
    assert len(small_model.held_ids) == len(small)  # the input model is untouched


def test_additions_update_the_model(small, small_model):
    extra = ob.data.from_arrays(small.X[:4] + 0.1, small.y[:4], ids=[1000, 1001, 1002, 1003], num_classes=3)
    model = copy.deepcopy(small_model)
    _, steps, n = descent_to_delete_update(model, small, add=extra)
    # more data: the reference (A on the new data) publishes with the smaller sigma(T, n + 4), so the update
    # contracts its error by n / (n + 4) further and publishes with that same sigma
    g = model.constants.gamma
    extra_steps = math.ceil(math.log((len(small) + 4) / len(small)) / -math.log(g) - 1e-9)
    assert n == len(small) + 4 and 1003 in model.held_ids.tolist()
    assert steps == batch_iterations(20, 4, model.constants) + extra_steps
    assert model.sigma == pytest.approx(d2d_sigma(20, len(small) + 4, model.epsilon, model.delta, model.constants))
    both = ob.data.from_arrays(
        np.concatenate([small.X, extra.X]), np.concatenate([small.y, extra.y]),
        ids=np.concatenate([small.ids, extra.ids]), num_classes=3,
    )
    with pytest.raises(InvalidInputError, match="already used"):
        descent_to_delete_update(model, both, add=extra)


@pytest.mark.parametrize("settings", [{"epsilon": -1.0}, {"epsilon": float("inf")}, {"delta": -0.1}, {"delta": 1.0}, {"delta": 1.5}])
def test_bad_privacy_parameters_raise(settings):
    with pytest.raises(InvalidInputError, match="epsilon|delta"):
        make_method("descent_to_delete", settings)


def test_successive_publications_draw_independent_noise(small, small_model):
    model = copy.deepcopy(small_model)
    noises = []
    for ids in ([3], [5], [9]):
        descent_to_delete_update(model, small.without(model.deleted_ids.tolist() + ids), delete=ids)
        noises.append((model.weight.detach().double() - model.secret).flatten() / model.sigma)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not torch.allclose(noises[a], noises[b])  # a shared draw would cancel between publications


def test_bad_requests_raise(small, small_model):
    once = ob.unlearn(small_model, [3], small, method="descent_to_delete")
    with pytest.raises(InvalidInputError, match="already deleted"):
        ob.unlearn(once.model, [3, 4], small, method="descent_to_delete")
    with pytest.raises(UnknownIdsError):
        ob.unlearn(small_model, [10_000], small, method="descent_to_delete")
    wider = ob.data.synthetic(160, 5, 3, seed=0)  # ids 150..159 were never trained on
    with pytest.raises(UnknownIdsError, match="Descent-to-Delete"):
        ob.unlearn(small_model, [155], wider, method="descent_to_delete")
    with pytest.raises(InvalidInputError, match="lacks"):
        descent_to_delete_update(copy.deepcopy(small_model), small.subset(small.ids[:100]), delete=[1])
    with pytest.raises(InvalidInputError, match="stripped"):
        descent_to_delete_update(small_model.strip_secret(), small, delete=[1])
    with pytest.raises(InvalidInputError, match="iterations"):
        d2d_sigma(0, 10, 1.0, 1e-5, HAND)


def test_other_models_are_refused_naming_the_supported_one(small):
    with pytest.raises(UnsupportedModelError, match="DescentToDeleteLogistic"):
        ob.unlearn(nn.Linear(5, 3), [1], small, method="descent_to_delete")
    assert isinstance(train_descent_to_delete(small, lam=0.05, iterations=1), DescentToDeleteLogistic)
