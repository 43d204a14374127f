"""The NeurIPS 2023 competition's leading methods: each forgets a class on the tiny MLP while retain holds,
and stacked equals per model (uniform_contrast, snip_reinit, noise_finetune, prune_reinit, reset_distill,
shrink_distill)."""

from __future__ import annotations

import pytest
import torch

import obliviate as ob
from obliviate.empirical.noise_finetune import balanced_class_weights
from obliviate.empirical.prune_reinit import prune_and_redraw
from obliviate.empirical.snip_reinit import feature_weights
from obliviate.empirical.uniform_contrast import contrast_loss, uniform_kl
from obliviate.training import train_many
from obliviate.unlearning import unlearn_many

SEEDS = [3, 7]
LEADERS = {
    "uniform_contrast": {"epochs": 3, "retain_lr": 0.02, "uniform_lr": 0.05, "batch_size": 64},
    "snip_reinit": {"epochs": 4, "lr": 0.1, "init_rate": 0.9},
    "noise_finetune": {"epochs": 4, "lr": 0.05, "std": 1.0, "layers": 2},
    "prune_reinit": {"epochs": 3.0, "lr": 0.05, "amount": 0.9},
    "reset_distill": {"epochs": 6, "lr": 0.1, "reset": 0.9},
    "shrink_distill": {"epochs": 6, "lr": 0.05, "batch_size": 16, "alpha": 0.0},
}


@pytest.fixture(scope="module")
def digits300(train_set):
    return train_set.subset(train_set.ids[:300])


@pytest.fixture(scope="module")
def leaders_stack(digits300):
    recipe = ob.Recipe(model="mlp", epochs=20, batch_size=32, model_options={"hidden": (32,)})
    return train_many(recipe, digits300, SEEDS)


@pytest.fixture(scope="module")
def class2(digits300):
    return ob.ForgetRequest(digits300.ids_of_class(2))


def _accuracy(model, data) -> float:
    X, y = data.tensors
    with torch.no_grad():
        return float((model.eval()(X).argmax(-1) == y).float().mean())


@pytest.mark.parametrize("method", sorted(LEADERS))
def test_leader_forgets_while_retain_holds_and_stacks(method, leaders_stack, class2, digits300):
    settings = LEADERS[method]
    forget, retain = class2.split(digits300)
    result = unlearn_many(leaders_stack, class2, digits300, method=method, settings=settings)
    assert result.vectorised
    for i, seed in enumerate(leaders_stack.seeds):
        original = leaders_stack.model(i)
        alone = ob.unlearn(original, class2, digits300, method=method, settings=settings, seed=seed)
        sa, sb = result.stack.model(i).state_dict(), alone.model.state_dict()
        assert max(float((sa[k] - sb[k]).abs().max()) for k in sa) <= 1e-4, (method, seed)
        assert _accuracy(original, forget) > 0.85
        assert _accuracy(alone.model, forget) < _accuracy(original, forget) - 0.3
        assert _accuracy(alone.model, retain) > 0.7
    # different seeds give different models (the seeded randomness reaches the weights)
    s0, s1 = result.stack.model(0).state_dict(), result.stack.model(1).state_dict()
    assert any(not torch.equal(s0[k], s1[k]) for k in s0)


def test_uniform_kl_is_zero_at_uniform_and_contrast_prefers_equal_similarities():
    assert float(uniform_kl(torch.zeros(4, 10))) == pytest.approx(0.0, abs=1e-7)
    assert float(uniform_kl(torch.tensor([[5.0, 0.0, 0.0]]))) > 1.0
    retain = torch.eye(3)
    equal = contrast_loss(torch.zeros(1, 3), retain, 1.0)
    peaked = contrast_loss(torch.tensor([[9.0, 0.0, 0.0]]), retain, 1.0)
    assert float(equal) == pytest.approx(torch.log(torch.tensor(3.0)).item(), rel=1e-6)
    assert float(peaked) > float(equal)


def test_snip_reinit_leaves_the_head_alone():
    from obliviate.models import build_model

    model = build_model("mlp", (8,), 3, options={"hidden": (6, 5)})
    names = list(feature_weights(model))
    last = [n for n, _ in model.named_parameters() if n.endswith("weight")][-1]
    assert last not in names and len(names) == 2


def test_prune_and_redraw_keeps_the_largest_and_redraws_the_rest():
    torch.manual_seed(0)
    layer = torch.nn.Linear(20, 10)
    before = layer.weight.detach().clone()
    pruned = prune_and_redraw(layer, 0.9, torch.Generator().manual_seed(1))
    assert pruned == round(0.9 * 210)
    kept = layer.weight == before
    assert 0 < int(kept.sum()) <= 21  # the largest-|w| entries survive unchanged
    assert float(before.abs()[kept].min()) >= float(before.abs()[~kept].max())
    assert float(layer.weight.detach().abs().max()) <= max(float(before.abs().max()), 20**-0.5)
    assert int((layer.bias != 0).sum()) <= 21  # pruned biases stay 0


def test_balanced_class_weights_match_sklearn():
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 1, 2, 2])
    ours = balanced_class_weights(y, 4).numpy()
    ref = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=y)
    assert np.allclose(ours[:3], ref) and ours[3] == 0
