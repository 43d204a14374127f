"""The method registry, settings, composition and the ``unlearn`` entry point's contract.

Uses only ``finetune`` and ``retrain`` (written with the core); the other methods have their own tests.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.errors import InvalidInputError, MissingRecipeError, UnknownConfigKeyError, UnknownMethodError
from obliviate.unlearning import Composite, make_method, method_class
from obliviate.unlearning.base import coerce_setting

FAST = {"epochs": 1}


@pytest.fixture(scope="module")
def data(small_train):
    return small_train


@pytest.fixture(scope="module")
def model(tiny_recipe, data):
    return ob.train(tiny_recipe, data)


@pytest.fixture(scope="module")
def request_(data):
    return ob.ForgetRequest(data.ids_of_class(3))


# ---------------------------------------------------------------------------------- lookup
def test_core_methods_are_registered_with_their_guarantees():
    methods = ob.available_methods()
    assert {"finetune", "retrain"} <= set(methods) and list(methods) == sorted(methods)
    assert method_class("retrain").guarantee.kind == "exact"
    assert method_class("finetune").guarantee.kind == "empirical"


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(UnknownMethodError) as info:
        make_method("forgetme")
    message = str(info.value)
    assert message.startswith("Unknown unlearning method 'forgetme'. Known methods: ")
    assert "finetune" in info.value.known and "retrain" in info.value.known and "finetune" in message
    with pytest.raises(UnknownMethodError, match="'nope'"):
        make_method("finetune+nope")
    with pytest.raises(UnknownMethodError):
        make_method("  ")


def test_unknown_setting_lists_the_valid_keys():
    with pytest.raises(UnknownConfigKeyError) as info:
        make_method("finetune", {"alpha": 1.0})
    assert str(info.value) == (
        "Method 'finetune' has no setting 'alpha'. Valid settings: batch_size, epochs, lr, momentum, weight_decay."
    )
    with pytest.raises(InvalidInputError, match="write it as method.key"):
        make_method("finetune+retrain", {"alpha": 1.0})
    with pytest.raises(InvalidInputError, match="not part of"):
        make_method("finetune", {"scrub.alpha": 1.0})
    with pytest.raises(InvalidInputError, match="names a method twice"):
        make_method("finetune+finetune")


# ---------------------------------------------------------------------------------- settings
def test_cli_strings_are_coerced_to_the_defaults_types():
    ft = make_method("finetune", {"lr": "0.1", "epochs": "3", "momentum": "0"})
    assert ft.config.lr == 0.1 and type(ft.config.lr) is float
    assert ft.config.epochs == 3 and type(ft.config.epochs) is int
    assert ft.config.momentum == 0.0 and type(ft.config.momentum) is float
    assert make_method("finetune+retrain", {"finetune.epochs": "2"}).parts[0].config.epochs == 2
    for text, value in [("true", True), ("False", False), ("yes", True), ("0", False)]:
        assert coerce_setting(text, False, method="m", key="flag") is value
    assert coerce_setting("(1, 2)", (3,), method="m", key="dims") == (1, 2)
    assert coerce_setting("4", (3,), method="m", key="dims") == (4,)
    assert coerce_setting("2.0", 1, method="m", key="n") == 2


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"lr": "fast"}, "finetune.lr: cannot read 'fast'"),
        ({"lr": "True"}, "finetune.lr expects a number"),
        ({"lr": "true"}, "finetune.lr: cannot read"),
        ({"epochs": "1.5"}, "finetune.epochs expects an integer"),
        ({"epochs": True}, "finetune.epochs expects an integer"),
        ({"epochs": "0"}, "finetune.epochs must be > 0"),
        ({"lr": "-0.1"}, "finetune.lr must be > 0"),
        ({"lr": float("nan")}, "finetune.lr must be finite"),
    ],
)
def test_bad_setting_values_raise_invalid_input(settings, fragment):
    with pytest.raises(InvalidInputError, match=fragment.replace(".", r"\.")):
        make_method("finetune", settings)


def test_bad_bool_strings_raise():
    with pytest.raises(InvalidInputError, match="expects true or false"):
        coerce_setting("maybe", True, method="m", key="flag")


# ---------------------------------------------------------------------------------- unlearn
def test_unlearn_never_modifies_the_input_model(model, request_, data, same_weights):
    before = copy.deepcopy(model.state_dict())
    flags = [p.requires_grad for p in model.parameters()]
    model.train()
    result = ob.unlearn(model, request_, data, method="finetune", settings=FAST)
    assert model.training  # its mode is restored too
    model.eval()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert result.model is not model and not same_weights(result.model, model)
    assert np.array_equal(result.forget_ids, data.ids_of_class(3))
    assert result.method == "finetune" and result.config["epochs"] == 1


def test_unlearn_is_deterministic_by_seed(model, request_, data, same_weights):
    a = ob.unlearn(model, request_, data, method="finetune", settings=FAST, seed=3)
    b = ob.unlearn(model, request_, data, method="finetune", settings=FAST, seed=3)
    c = ob.unlearn(model, request_, data, method="finetune", settings=FAST, seed=4)
    assert same_weights(a.model, b.model) and not same_weights(a.model, c.model)


def test_unlearn_counts_cost(model, request_, data):
    result = ob.unlearn(model, request_, data, method="finetune", settings={"epochs": 2, "batch_size": 64})
    retain = len(data) - len(request_.ids)
    assert result.cost.gradient_steps == 2 * -(-retain // 64)
    assert result.cost.examples_seen == 2 * retain and result.cost.examples_touched == retain
    assert result.cost.seconds > 0


def test_unlearn_accepts_plain_ids(model, request_, data, same_weights):
    by_ids = ob.unlearn(model, list(request_.ids), data, method="finetune", settings=FAST)
    assert same_weights(by_ids.model, ob.unlearn(model, request_, data, method="finetune", settings=FAST).model)


def test_model_and_data_mismatch_is_invalid_input(model, data, request_, tiny_recipe):
    wide = ob.data.from_arrays(np.zeros((10, 32), np.float32), np.arange(10) % 10)
    with pytest.raises(InvalidInputError, match=r"cannot take this data's inputs of shape \(32,\)"):
        ob.unlearn(model, [1], wide, method="finetune")
    five = ob.data.from_arrays(data.X, data.y % 5, ids=data.ids)
    with pytest.raises(InvalidInputError, match=r"expected \(batch, 5\) logits"):
        ob.unlearn(model, request_, five, method="finetune")
    with pytest.raises(InvalidInputError, match="must be a torch.nn.Module"):
        ob.unlearn(tiny_recipe, request_, data, method="finetune")
    with pytest.raises(InvalidInputError, match="obliviate Dataset"):
        ob.unlearn(model, request_, (data.X, data.y), method="finetune")


def test_retrain_needs_a_recipe_for_a_module_that_records_none(model, request_, data):
    own = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))  # the user's module: no recipe
    with pytest.raises(MissingRecipeError, match="pass recipe=ob.Recipe"):
        ob.unlearn(own, request_, data, method="retrain")


def test_retrain_uses_the_recipe_an_obliviate_model_records(model, request_, data, tiny_recipe, same_weights):
    result = ob.unlearn(model, request_, data, method="retrain")
    assert same_weights(result.model, ob.retrain(tiny_recipe, data, request_, cache=False))


def test_retrain_method_equals_the_oracle(model, request_, data, tiny_recipe, same_weights):
    result = ob.unlearn(model, request_, data, method="retrain", recipe=tiny_recipe)
    assert result.guarantee.kind == "exact"
    assert same_weights(result.model, ob.retrain(tiny_recipe, data, request_, cache=False))
    retain = len(data) - len(request_.ids)
    assert result.cost.examples_seen == tiny_recipe.epochs * retain and result.cost.examples_touched == retain


# ---------------------------------------------------------------------------------- composition
def test_composition_runs_parts_in_order_and_adds_costs(model, request_, data, tiny_recipe, same_weights):
    ft = ob.unlearn(model, request_, data, method="finetune", settings=FAST, recipe=tiny_recipe)
    rt = ob.unlearn(model, request_, data, method="retrain", recipe=tiny_recipe)
    ft_after_rt = ob.unlearn(rt.model, request_, data, method="finetune", settings=FAST)

    both = ob.unlearn(model, request_, data, method="retrain+finetune", settings=FAST, recipe=tiny_recipe)
    assert isinstance(make_method("retrain+finetune"), Composite)
    assert both.method == "retrain+finetune" and both.guarantee.kind == "empirical"
    assert same_weights(both.model, ft_after_rt.model)  # finetune ran on retrain's output
    assert not same_weights(both.model, rt.model)
    assert both.cost.gradient_steps == rt.cost.gradient_steps + ft.cost.gradient_steps
    assert both.cost.examples_seen == rt.cost.examples_seen + ft.cost.examples_seen
    assert both.cost.examples_touched == len(data) - len(request_.ids)
    assert both.config == {"retrain": {}, "finetune": make_method("finetune", FAST).settings()}

    reverse = ob.unlearn(model, request_, data, method="finetune+retrain", settings=FAST, recipe=tiny_recipe)
    assert same_weights(reverse.model, rt.model)  # retrain last: the fresh model wins
    assert reverse.cost.gradient_steps == both.cost.gradient_steps
