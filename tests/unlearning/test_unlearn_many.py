"""unlearn_many: every model of the unlearned stack equals unlearn() on that model with its seed."""

from __future__ import annotations

import warnings

import pytest
import torch

import obliviate as ob
from obliviate.training import ModelStack, train_many
from obliviate.unlearning import unlearn_many, vectorised_methods

ATOL = 1e-5  # measured differences are below 1e-8 (float rounding of batched matmuls)
SEEDS = [3, 7, 11]


@pytest.fixture(scope="module")
def digits300(train_set):
    return train_set.subset(train_set.ids[:300])


@pytest.fixture(scope="module")
def mlp_stack(digits300):
    recipe = ob.Recipe(model="mlp", epochs=3, batch_size=32, model_options={"hidden": (32,)})
    return train_many(recipe, digits300, SEEDS)


@pytest.fixture(scope="module")
def class3(digits300):
    return ob.ForgetRequest(digits300.ids_of_class(3))


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


def _assert_matches_one_by_one(stack: ModelStack, request, data, method: str, settings=None):
    result = unlearn_many(stack, request, data, method=method, settings=settings)
    assert result.method == method and result.stack.seeds == stack.seeds
    steps = []
    for i, seed in enumerate(stack.seeds):
        alone = ob.unlearn(stack.model(i), request, data, method=method, settings=settings, seed=seed)
        assert _max_difference(result.stack.model(i), alone.model) <= ATOL, (method, seed)
        steps.append(alone.cost.gradient_steps)
    assert result.model_steps == tuple(steps)
    assert result.cost.gradient_steps == max(steps)
    return result


@pytest.mark.parametrize(
    ("method", "settings"),
    [
        ("finetune", {"epochs": 2}),
        ("l1_sparse", {"epochs": 2, "no_l1_epochs": 1}),
        ("salun", {"epochs": 2}),  # per-model saliency masks and random labels
        ("prune_finetune", {"epochs": 2, "keep_mask": True}),  # per-model magnitude thresholds
        ("reset_layers", {"epochs": 2}),  # per-model re-initialisation from each seed
        ("neggrad_plus", {"epochs": 2}),  # early stop fires at a different step per model here
        ("kl_retain", {"epochs": 2}),
        ("scrub", {"epochs": 2}),  # Adam with a per-epoch learning rate
        (
            "uniform_contrast",
            {"epochs": 2, "batch_size": 64, "uniform_lr": 0.05, "retain_lr": 0.02},
        ),  # three optimisers
        ("snip_reinit", {"epochs": 2, "lr": 0.1, "init_rate": 0.9}),  # per-model gradient masks (0.1 / 1)
        ("noise_finetune", {"epochs": 2, "lr": 0.05, "std": 1.0}),  # per-model noise, again before the last epoch
        ("prune_reinit", {"epochs": 2.0, "lr": 0.05, "amount": 0.9}),  # teacher, re-draw, float16 rounding
        ("reset_distill", {"epochs": 2, "reset": 0.9}),  # per-model stochastic re-initialisation, teacher
        (
            "shrink_distill",
            {"epochs": 2, "shrink": 0.3, "alpha": 0.5},
        ),  # per-model fresh draw, teacher, per-model head scale
    ],
)
def test_vectorised_method_equals_unlearn_per_model(method, settings, mlp_stack, class3, digits300):
    result = _assert_matches_one_by_one(mlp_stack, class3, digits300, method, settings)
    assert result.vectorised
    # and it unlearns: class 3 is forgotten more than the other classes by every model
    X, y = digits300.subset(class3.ids).tensors
    before = (mlp_stack.logits(X).argmax(-1) == y).float().mean()
    after = (result.stack.logits(X).argmax(-1) == y).float().mean()
    assert after < before


def test_gradient_ascent_stops_each_model_on_its_own(mlp_stack, class3, digits300):
    result = _assert_matches_one_by_one(mlp_stack, class3, digits300, "gradient_ascent", {"lr": 0.05, "epochs": 10})
    assert len(set(result.model_steps)) > 1  # the models stopped at different steps: a frozen model stays put


def test_cnn_stack(digits300, class3):
    recipe = ob.Recipe(model="cnn", epochs=1, batch_size=32, model_options={"width": 4})
    stack = train_many(recipe, digits300, [0, 1])
    _assert_matches_one_by_one(stack, class3, digits300, "random_label", {"epochs": 1})


def test_unvectorised_method_falls_back_and_says_so(mlp_stack, class3, digits300):
    assert "ssd" not in vectorised_methods()
    with pytest.warns(UserWarning, match="'ssd' has no vectorised form"):
        result = unlearn_many(mlp_stack, class3, digits300, method="ssd")
    assert not result.vectorised
    for i, seed in enumerate(mlp_stack.seeds):
        alone = ob.unlearn(mlp_stack.model(i), class3, digits300, method="ssd", seed=seed)
        assert _max_difference(result.stack.model(i), alone.model) == 0.0
    with pytest.warns(UserWarning, match="finetune\\+ssd"):  # a composite with a vectorisable part loops too
        assert not unlearn_many(mlp_stack, class3, digits300, method="finetune+ssd", settings={"epochs": 1}).vectorised


def test_retrain_fallback_uses_the_stack_recipe_per_seed(mlp_stack, class3, digits300):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = unlearn_many(mlp_stack.subset([1]), class3, digits300, method="retrain")
    retained = digits300.without(class3.ids)
    oracle = ob.train(mlp_stack.recipe.with_seed(SEEDS[1]), retained)
    assert _max_difference(result.stack.model(0), oracle) == 0.0


def test_bad_input(mlp_stack, class3, digits300):
    with pytest.raises(ob.errors.InvalidInputError, match="ModelStack"):
        unlearn_many(mlp_stack.model(0), class3, digits300)
    with pytest.raises(ob.errors.UnknownMethodError):
        unlearn_many(mlp_stack, class3, digits300, method="nope")
    with pytest.raises(ob.errors.EmptyForgetSetError):
        unlearn_many(mlp_stack, [], digits300)


# ---------------------------------------------------------------------- BatchNorm models
class _TinyBatchNormNet(torch.nn.Module):
    """conv -> BatchNorm2d -> ReLU -> pool -> linear -> BatchNorm1d -> ReLU -> linear, for 8x8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(3)
        self.fc1 = torch.nn.Linear(3 * 4 * 4, 12)
        self.bn2 = torch.nn.BatchNorm1d(12)
        self.fc2 = torch.nn.Linear(12, 10)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.conv(x.reshape(-1, 1, 8, 8)))), 2)
        return self.fc2(torch.relu(self.bn2(self.fc1(h.flatten(1)))))


@pytest.fixture(scope="module")
def bn_stack(digits300):
    """Two BatchNorm models with their own, non-default running statistics (as after training)."""
    models = []
    for seed in (5, 9):
        torch.manual_seed(seed)
        model = _TinyBatchNormNet()
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name.endswith("running_mean"):
                    b.normal_(0.0, 0.5)
                elif name.endswith("running_var"):
                    b.uniform_(0.5, 2.0)
        models.append(model.eval())
    return ModelStack.from_models(models, seeds=[5, 9])


BN_SETTINGS = {
    "finetune": {"epochs": 1},
    "l1_sparse": {"epochs": 2, "no_l1_epochs": 1},
    "random_label": {"epochs": 1},
    "salun": {"epochs": 1},
    "prune_finetune": {"epochs": 1, "sparsity": 0.5},
    "reset_layers": {"epochs": 1, "which": "first", "k": 2},  # resets conv and bn1 (weights and statistics)
    "reinit_finetune": {"epochs": 1},
    "gradient_ascent": {"epochs": 3, "lr": 0.05},
    "neggrad_plus": {"epochs": 1},
    "kl_retain": {"epochs": 1},
    "scrub": {"epochs": 2, "msteps": 1},
    "uniform_contrast": {"epochs": 1},
    "snip_reinit": {"epochs": 1},  # re-initialises conv.weight and fc1.weight (not the head)
    "noise_finetune": {"epochs": 2},  # noise on conv.weight, again before the last epoch
    "prune_reinit": {"epochs": 1.0},
    "reset_distill": {"epochs": 1, "reset": 1.0},  # full re-initialisation, BatchNorm statistics included
    "shrink_distill": {"epochs": 1, "shrink": 0.0, "batch_size": 32},  # full re-initialisation, head scaled per model
}


def test_every_stacked_method_has_a_batchnorm_case():
    assert set(BN_SETTINGS) == set(vectorised_methods())


@pytest.mark.parametrize("method", sorted(BN_SETTINGS))
def test_batchnorm_stack_equals_unlearn_per_model(method, bn_stack, class3, digits300):
    """Weights AND running statistics of every model agree: each model's training-mode forward passes
    update its own statistics, the teacher and early-stop checks run in eval mode on the right ones."""
    result = _assert_matches_one_by_one(bn_stack, class3, digits300, method, BN_SETTINGS[method])
    assert result.vectorised
    moved = result.stack.model(0).state_dict()["bn2.running_mean"] - bn_stack.model(0).state_dict()["bn2.running_mean"]
    assert float(moved.abs().max()) > 1e-3  # the statistics were updated, not left at the original's


def test_train_many_keeps_batchnorm_statistics_per_model(digits300):
    recipe = ob.Recipe(model="resnet18", epochs=1, lr=0.01, batch_size=64, model_options={"width": 2})
    data = digits300.subset(digits300.ids[:128])
    stack = train_many(recipe, data, [0, 1])
    for i, seed in enumerate((0, 1)):
        alone = ob.train(recipe.with_seed(seed), data)
        assert _max_difference(stack.model(i), alone) <= 1e-4
        assert float(stack.model(i).bn1.running_var.sub(1.0).abs().max()) > 1e-3  # not the initial 1


def test_many_holds_no_loss_and_says_why_methods_loop():
    """unlearn_many runs each method's own loop: its module computes no loss and imports no method."""
    import inspect

    import obliviate.unlearning.many as many

    source = inspect.getsource(many)
    for name in (
        "cross_entropy",
        "kl_div",
        "log_softmax",
        "distill_kl",
        "ascent_loss",
        "forget_loss",
        "retain_loss",
        "paired_objective",
        "obliviate.empirical",
    ):
        assert name not in source, name
    assert many.not_stacked_reason(ob.unlearning.make_method("ssd")).startswith("no optimisation loop")
    assert "composite" in many.not_stacked_reason(ob.unlearning.make_method("finetune+ssd"))
    assert many.not_stacked_reason(ob.unlearning.make_method("scrub")) is None


def test_each_gives_every_model_its_own_original(digits300, class3):
    """A method's per-model preparation reads ``task.original``: in a stack it must be that model's original, as
    ``unlearn`` gives it, not the stack's template (found when a method took its target from it)."""
    from obliviate.unlearning.base import UnlearnTask
    from obliviate.unlearning.many import StackedModels

    stack = train_many(
        ob.Recipe(model="mlp", epochs=2, batch_size=32, model_options={"hidden": (16,)}), digits300, [0, 1]
    )
    forget, retain = class3.split(digits300)
    tasks = [UnlearnTask(original=stack.template, forget=forget, retain=retain, seed=s) for s in stack.seeds]
    learner = StackedModels(stack, forget, retain, tasks, method="probe")

    def differences(model, task):
        with torch.no_grad():
            next(model.parameters()).add_(1.0)  # a preparation that edits the model must not reach its original
        original = stack.model(len(seen))
        seen.append(task.original)
        return _max_difference(task.original, original), task.original.training

    seen: list = []
    assert learner.each(differences) == [(0.0, False), (0.0, False)]
    assert _max_difference(seen[0], seen[1]) > 0


def test_each_keeps_the_task_and_its_cost_counters(digits300, class3):
    """Gradient work counted inside each() (saliency, SNIP gradients) lands on the model's own task, and a method may
    key per-model state by its task across each() calls."""
    from obliviate.unlearning.base import UnlearnTask
    from obliviate.unlearning.many import StackedModels

    stack = train_many(
        ob.Recipe(model="mlp", epochs=1, batch_size=32, model_options={"hidden": (8,)}), digits300, [0, 1]
    )
    forget, retain = class3.split(digits300)
    tasks = [UnlearnTask(original=stack.template, forget=forget, retain=retain, seed=s) for s in stack.seeds]
    learner = StackedModels(stack, forget, retain, tasks, method="probe")

    def count(model, task):
        task.gradient_steps += 1
        return id(task)

    assert learner.each(count) == [id(t) for t in tasks] == learner.each(count)
    assert [t.gradient_steps for t in tasks] == [2, 2]
    assert all(t.original is stack.template for t in tasks)  # restored after the call
