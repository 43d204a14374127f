"""Recipes and the deterministic trainer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.certified.dp import DP
from obliviate.errors import DivergedError, InvalidInputError, UnknownModelError
from obliviate.training.loop import make_scheduler, minibatches, num_batches


def accuracy(model: torch.nn.Module, data: ob.Dataset) -> float:
    X, y = data.tensors
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


# ---------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize(
    "recipe",
    [
        ob.Recipe(model="mlp", epochs=2, seed=0),
        ob.Recipe(model="cnn", epochs=1, seed=0, model_options={"width": 8}),
        ob.Recipe(model="resnet18", epochs=1, seed=0, batch_size=32, model_options={"width": 4}),
    ],
    ids=["mlp", "cnn", "resnet18"],
)
def test_train_is_bit_for_bit_deterministic_and_leaves_the_global_rng(recipe, small_train, same_weights):
    state = torch.get_rng_state()
    a = ob.train(recipe, small_train)
    assert torch.equal(torch.get_rng_state(), state)
    b = ob.train(recipe, small_train)
    assert same_weights(a, b)
    assert not a.training  # returned in eval mode
    init = ob.models.build_model(recipe.model, small_train.input_shape, 10, seed=recipe.seed, options=recipe.options)
    assert not same_weights(a, init)  # it did train


def test_train_does_not_read_the_global_rng(tiny_recipe, small_train, same_weights):
    torch.manual_seed(1)
    a = ob.train(tiny_recipe, small_train)
    torch.manual_seed(2)
    assert same_weights(a, ob.train(tiny_recipe, small_train))


def test_train_is_a_function_of_the_id_set_not_row_order(tiny_recipe, small_train, same_weights):
    perm = np.random.default_rng(7).permutation(len(small_train))
    shuffled = ob.data.from_arrays(small_train.X[perm], small_train.y[perm], ids=small_train.ids[perm], num_classes=10)
    assert not np.array_equal(shuffled.ids, small_train.ids)
    assert same_weights(ob.train(tiny_recipe, small_train), ob.train(tiny_recipe, shuffled))


def test_different_seed_or_data_gives_different_weights(tiny_recipe, small_train, same_weights):
    base = ob.train(tiny_recipe, small_train)
    assert not same_weights(base, ob.train(tiny_recipe.with_seed(1), small_train))
    assert not same_weights(base, ob.train(tiny_recipe, small_train.without(small_train.ids[:1])))


def test_training_learns_digits(trained_mlp, test_set, fast_recipe):
    assert fast_recipe.epochs == 5
    assert accuracy(trained_mlp, test_set) > 0.90


def test_singleton_last_batch_is_merged_so_batchnorm_trains(small_train):
    data = small_train.subset(small_train.ids[:65])  # 65 = 64 + 1: one batch of 65, not 64 and 1
    recipe = ob.Recipe(model="resnet18", epochs=1, batch_size=64, model_options={"width": 4})
    model = ob.train(recipe, data)
    assert int(model.bn1.num_batches_tracked) == 1
    sizes = [len(b) for b in minibatches(65, 64, generator=torch.Generator().manual_seed(0))]
    assert sizes == [65] and num_batches(65, 64) == 1
    for n, bs in [(1, 4), (4, 4), (6, 4), (9, 4), (128, 64), (129, 64), (7, 1)]:
        batches = list(minibatches(n, bs, generator=torch.Generator().manual_seed(n)))
        assert len(batches) == num_batches(n, bs)
        assert torch.equal(torch.sort(torch.cat(batches)).values, torch.arange(n))  # each example once
        assert all(len(b) > 1 for b in batches) or n == 1 or bs == 1


def test_a_diverging_recipe_raises_diverged_error_naming_the_step(small_train):
    pattern = r"training diverged at gradient step \d+: loss = (nan|inf).*lr=1e\+08"
    with pytest.raises(DivergedError, match=pattern) as info:
        ob.train(ob.Recipe(epochs=3, lr=1e8), small_train)
    assert info.value.step >= 1 and not np.isfinite(info.value.value)


def test_train_checks_its_arguments(tiny_recipe, small_train):
    with pytest.raises(InvalidInputError, match="recipe must be an obliviate.Recipe"):
        ob.train({"model": "mlp"}, small_train)
    with pytest.raises(InvalidInputError, match="from_arrays"):
        ob.train(tiny_recipe, (small_train.X, small_train.y))


def test_schedules_follow_their_definitions():
    def lrs(name: str, total: int) -> list[float]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make_scheduler(name, opt, total)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    assert lrs("constant", 4) == [1.0] * 4
    assert lrs("cosine", 4) == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466])
    assert lrs("step", 8) == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


# ---------------------------------------------------------------------------------- Recipe
@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"model": "vgg"}, UnknownModelError, "Known models: certified_logreg, certified_logreg_stored, cnn, d2d_logreg, mlp, resnet18"),
        ({"optimizer": "rmsprop"}, InvalidInputError, "optimizer must be one of"),
        ({"schedule": "linear"}, InvalidInputError, "schedule must be one of"),
        ({"lr": 0}, InvalidInputError, "lr must be > 0"),
        ({"lr": float("nan")}, InvalidInputError, "lr must be finite"),
        ({"lr": "0.1"}, InvalidInputError, "lr must be a number"),
        ({"momentum": -0.1}, InvalidInputError, "momentum and weight_decay must be >= 0"),
        ({"weight_decay": float("inf")}, InvalidInputError, "weight_decay must be finite"),
        ({"epochs": 0}, InvalidInputError, "epochs and batch_size must be >= 1"),
        ({"epochs": 2.5}, InvalidInputError, "epochs must be an integer"),
        ({"batch_size": 0}, InvalidInputError, "epochs and batch_size must be >= 1"),
        ({"seed": True}, InvalidInputError, "seed must be an integer"),
        ({"seed": -1}, InvalidInputError, "seed must be >= 0"),
    ],
)
def test_recipe_validation(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        ob.Recipe(**kwargs)


def test_recipe_is_frozen_hashable_and_round_trips():
    r = ob.Recipe(model="cnn", epochs=3, model_options={"width": 8})
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0  # type: ignore[misc]
    assert hash(r) == hash(ob.Recipe(model="cnn", epochs=3, model_options={"width": 8}))
    assert len({r, ob.Recipe(model="cnn", epochs=3, model_options={"width": 8}), ob.Recipe()}) == 2
    assert ob.Recipe.from_dict(r.to_dict()) == r
    assert r.options == {"width": 8} and r.with_seed(4).seed == 4 and r.with_seed(4).epochs == 3
    with pytest.raises(InvalidInputError, match="unknown recipe fields"):
        ob.Recipe.from_dict({**r.to_dict(), "dropout": 0.1})


def test_recipe_fingerprint_is_stable_and_sensitive_to_every_field():
    base = ob.Recipe()
    assert base.fingerprint == ob.Recipe().fingerprint
    assert ob.Recipe(epochs=np.int64(30), lr=np.float64(0.05)).fingerprint == base.fingerprint  # numpy scalars
    assert ob.Recipe(model_options={"hidden": [128, 64]}).fingerprint == ob.Recipe(
        model_options={"hidden": (128, 64)}
    ).fingerprint
    changed = {
        "model": "cnn",
        "optimizer": "adam",
        "lr": 0.01,
        "momentum": 0.5,
        "weight_decay": 0.0,
        "schedule": "cosine",
        "epochs": 3,
        "batch_size": 32,
        "seed": 1,
        "model_options": {"hidden": (32,)},
        "privacy": DP(epsilon=1.0),
    }
    assert set(changed) == {f.name for f in dataclasses.fields(ob.Recipe)}
    prints = {dataclasses.replace(base, **{k: v}).fingerprint for k, v in changed.items()}
    assert len(prints) == len(changed) and base.fingerprint not in prints


def test_adam_and_schedules_train(small_train, same_weights):
    for recipe in (ob.Recipe(optimizer="adam", lr=1e-3, epochs=1), ob.Recipe(schedule="step", epochs=1)):
        model = ob.train(recipe, small_train)
        assert same_weights(model, ob.train(recipe, small_train))
