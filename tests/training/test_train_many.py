"""train_many: each model of the stack is the model ob.train makes alone with its seed."""

from __future__ import annotations

import pytest
import torch

import obliviate as ob
from obliviate.training import ModelStack, train_many
from obliviate.training.many import NotVectorisableError

ATOL = 1e-5  # after 3 epochs; measured differences are below 1e-7 (float rounding of batched matmuls)
SEEDS = [3, 7, 11]


@pytest.fixture(scope="module")
def digits200(train_set):
    return train_set.subset(train_set.ids[:200])


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


@pytest.mark.parametrize(
    "recipe",
    [
        ob.Recipe(model="mlp", epochs=3, lr=0.05, batch_size=32, schedule="cosine", model_options={"hidden": (32,)}),
        ob.Recipe(model="mlp", epochs=3, optimizer="adam", lr=1e-3, batch_size=32, model_options={"hidden": (16,)}),
        ob.Recipe(model="cnn", epochs=3, lr=0.05, batch_size=32, schedule="step", model_options={"width": 4}),
    ],
    ids=["mlp-sgd-cosine", "mlp-adam", "cnn-sgd-step"],
)
def test_each_model_equals_training_it_alone(recipe, digits200):
    stack = train_many(recipe, digits200, SEEDS, chunk=2)  # two chunks: 2 models and 1
    assert stack.seeds == tuple(SEEDS) and len(stack) == 3
    for i, seed in enumerate(SEEDS):
        alone = ob.train(recipe.with_seed(seed), digits200)
        assert _max_difference(stack.model(i), alone) <= ATOL
    # the models differ from each other: each seed drew its own weights and data order
    assert _max_difference(stack.model(0), stack.model(1)) > 1e-2


def test_logits_subset_and_from_models(digits200, test_set, tiny_recipe):
    stack = train_many(tiny_recipe, digits200, [5, 1])
    X = test_set.tensors[0]
    logits = stack.logits(X, batch_size=100)
    assert logits.shape == (2, len(test_set), 10)
    for i in range(2):
        assert torch.allclose(logits[i], stack.model(i)(X), atol=1e-5)
    one = stack.subset([1])
    assert one.seeds == (1,) and torch.equal(one.logits(X)[0], logits[1])
    again = ModelStack.from_models([stack.model(1), stack.model(0)])
    assert again.seeds == (1, 5) and again.recipe == tiny_recipe.with_seed(0)
    assert torch.allclose(again.logits(X), logits.flip(0))
    model = stack.model(0)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # a standalone copy: the stack is unchanged
    assert torch.equal(stack.logits(X), logits)


@pytest.mark.parametrize(
    ("seeds", "match"),
    [([], "empty"), ([1, 2, 1], "repeat"), ([1, -2], "non-negative"), (4, "range")],
)
def test_bad_seeds_are_refused(seeds, match, tiny_recipe, digits200):
    with pytest.raises(ob.errors.InvalidInputError, match=match):
        train_many(tiny_recipe, digits200, seeds)


def test_solver_and_dp_recipes_are_refused(digits200):
    with pytest.raises(NotVectorisableError, match="certified solver"):
        train_many(ob.Recipe(model="certified_logreg"), digits200, [0, 1])
    dp = ob.Recipe(model="mlp", epochs=1, privacy={"epsilon": 8.0, "delta": 1e-5})
    with pytest.raises(NotVectorisableError, match="DP-SGD"):
        train_many(dp, digits200, [0, 1])
    with pytest.raises(ob.errors.InvalidInputError, match="chunk"):
        train_many(ob.Recipe(epochs=1), digits200, [0], chunk=0)
