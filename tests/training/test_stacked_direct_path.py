"""The direct stacked path of train_many (a template's stacked_forward, no vmap) and its batched divergence check."""

from __future__ import annotations

import pytest
import torch

import obliviate as ob
import obliviate.training.many as many
from obliviate.errors import DivergedError
from obliviate.models import build_model
from obliviate.training import ModelStack, train_many
from obliviate.training.many import StackFiniteWatch, stacked_cross_entropy, stacked_forward_of

SEEDS = [3, 7, 11]


@pytest.fixture(scope="module")
def digits160(train_set):
    return train_set.subset(train_set.ids[:160])


@pytest.mark.parametrize(
    ("name", "options"),
    [("mlp", {}), ("mlp", {"hidden": (16,)}), ("mlp", {"hidden": (8, 8, 8)}), ("cnn", {"width": 4})],
)
def test_stacked_forward_equals_each_module(name, options):
    models = [build_model(name, (64,), 10, seed=s, options=options) for s in SEEDS]
    stack = ModelStack.from_models(models)
    own = torch.randn(len(models), 13, 64)  # each model its own batch
    shared = torch.randn(13, 64)
    forward = stacked_forward_of(stack.template)
    assert forward is not None
    with torch.no_grad():
        out_own, out_shared = forward(stack.params, own), forward(stack.params, shared, shared=True)
        for m, model in enumerate(models):
            assert torch.allclose(out_own[m], model(own[m]), atol=1e-5)
            assert torch.allclose(out_shared[m], model(shared), atol=1e-5)
    assert not torch.allclose(out_own[0], out_own[1])  # three different models


def test_stacked_cross_entropy_is_each_models_batch_mean():
    logits, y = torch.randn(3, 9, 10), torch.randint(0, 10, (3, 9))
    expected = torch.stack([torch.nn.functional.cross_entropy(logits[m], y[m]) for m in range(3)])
    assert torch.allclose(stacked_cross_entropy(logits, y), expected, atol=1e-6)


def test_templates_with_buffers_or_no_stacked_forward_take_the_vmap_path(monkeypatch):
    assert stacked_forward_of(build_model("resnet18", (64,), 10, options={"width": 2})) is None  # BatchNorm
    assert stacked_forward_of(torch.nn.Linear(3, 2)) is None
    monkeypatch.setattr(many, "STACKED_FORWARD", False)
    assert stacked_forward_of(build_model("mlp", (64,), 10)) is None


@pytest.mark.parametrize(
    "recipe",
    [
        ob.Recipe(model="mlp", epochs=2, lr=0.05, batch_size=32, weight_decay=5e-4, model_options={"hidden": (16,)}),
        ob.Recipe(model="cnn", epochs=2, lr=0.05, batch_size=32, model_options={"width": 4}),
    ],
    ids=["mlp", "cnn"],
)
def test_direct_path_equals_the_vmap_path(recipe, digits160, monkeypatch):
    direct = train_many(recipe, digits160, SEEDS)
    monkeypatch.setattr(many, "STACKED_FORWARD", False)
    vmapped = train_many(recipe, digits160, SEEDS)
    for k, v in direct.params.items():
        assert torch.allclose(v, vmapped.params[k], atol=1e-5), k
    assert float((direct.params[k][0] - direct.params[k][1]).abs().max()) > 1e-2


def test_direct_path_does_not_call_vmap(digits160, monkeypatch):
    """The MLP trains without the vmapped step: its function is built but never called."""
    calls = []
    original = many.stacked_objective

    def counting(forward, objective):
        run, aux = original(forward, objective)
        return (lambda *a: calls.append(1) or run(*a)), aux

    monkeypatch.setattr(many, "stacked_objective", counting)
    train_many(ob.Recipe(model="mlp", epochs=1, batch_size=32, model_options={"hidden": (8,)}), digits160, SEEDS)
    assert calls == []
    monkeypatch.setattr(many, "STACKED_FORWARD", False)
    train_many(ob.Recipe(model="mlp", epochs=1, batch_size=32, model_options={"hidden": (8,)}), digits160, SEEDS)
    assert len(calls) == 5  # 160 examples in batches of 32


def test_watch_names_the_first_bad_step_and_model_when_it_reads_later():
    watch = StackFiniteWatch([10, 20, 30], where="training", lr=0.1, every=4)
    ok = torch.ones(3)
    watch(ok, 0)
    watch(torch.tensor([1.0, float("nan"), float("inf")]), 1)  # step 1: the model with seed 20 first
    watch(torch.tensor([float("inf"), float("nan"), 1.0]), 2)
    with pytest.raises(DivergedError, match=r"seed 20.*gradient step 1: loss = nan") as info:
        watch(ok, 3)  # the 4th call reads the kept losses
    assert info.value.step == 1
    watch(ok, 4)
    watch.flush()  # all finite: nothing raised, nothing kept


@pytest.mark.parametrize("lr", [1e8, 1e4])
def test_train_many_reports_the_step_a_per_step_check_reports(lr, digits160, monkeypatch):
    recipe = ob.Recipe(model="mlp", epochs=3, lr=lr, batch_size=32, model_options={"hidden": (16,)})
    with pytest.raises(DivergedError) as batched:
        train_many(recipe, digits160, SEEDS)
    monkeypatch.setattr(many, "CHECK_EVERY", 1)
    with pytest.raises(DivergedError) as each:
        train_many(recipe, digits160, SEEDS)
    assert batched.value.step == each.value.step
    assert str(batched.value) == str(each.value)


def test_closed_form_cross_entropy_gradient_equals_autograd():
    logits = torch.randn(3, 9, 10, dtype=torch.double, requires_grad=True)
    y = torch.randint(0, 10, (3, 9))
    losses, grad = many.stacked_cross_entropy_and_grad(logits, y)
    expected = stacked_cross_entropy(logits, y)
    expected.sum().backward()
    assert torch.allclose(losses, expected) and torch.allclose(grad, logits.grad)


@pytest.mark.parametrize("hidden", [(16,), (8, 8)])
def test_mlp_explicit_backward_equals_autograd(hidden):
    models = [build_model("mlp", (64,), 10, seed=s, options={"hidden": hidden}) for s in SEEDS]
    stack = ModelStack.from_models(models)
    params = {k: v.double().requires_grad_(True) for k, v in stack.params.items()}
    x, y = torch.randn(3, 11, 64, dtype=torch.double), torch.randint(0, 10, (3, 11))
    logits, backward = stack.template.double().stacked_vjp(params, x)
    _, g = many.stacked_cross_entropy_and_grad(logits, y)
    explicit = backward(g)
    stacked_cross_entropy(stack.template.stacked_forward(params, x), y).sum().backward()
    assert explicit.keys() == params.keys()
    for k, p in params.items():
        assert torch.allclose(explicit[k], p.grad, atol=1e-12), k
    # and the autograd node of stacked_forward is the chain rule through the module itself
    for p in params.values():
        p.grad = None
    sum(
        torch.nn.functional.cross_entropy(
            torch.func.functional_call(stack.template, {k: v[m] for k, v in params.items()}, (x[m],)), y[m]
        )
        for m in range(3)
    ).backward()
    for k, p in params.items():
        assert torch.allclose(explicit[k], p.grad, atol=1e-12), k


@pytest.mark.parametrize("shared", [False, True])
def test_linear_relu_chain_backward_passes_gradcheck(shared):
    from obliviate.models.stacked import linear_relu_chain

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(*(() if shared else (2,)), 5, 4, dtype=torch.double, generator=gen).requires_grad_(True)
    shapes = [(2, 3, 5), (2, 3), (2, 2, 3), (2, 2)]
    params = [torch.randn(*s, dtype=torch.double, generator=gen).requires_grad_(True) for s in shapes]

    def chain(h, w1, b1, w2, b2):
        return linear_relu_chain(h, [(w1, b1), (w2, b2)])

    assert torch.autograd.gradcheck(chain, (h, *params))
