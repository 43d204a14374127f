"""One execute() for every family: the shared loop equals the classifier's own, and unlearn() has one path."""

from __future__ import annotations

import pytest
import torch

import obliviate as ob
from obliviate.errors import DivergedError, InvalidInputError
from obliviate.unlearning.base import Unlearner
from obliviate.unlearning.execution import CLASSIFIER, LANGUAGE_MODEL, build_task, execute, family_of
from obliviate.unlearning.registry import make_method


def test_shared_execute_equals_the_classifier_execute(trained_mlp, small_train, same_weights):
    request = ob.ForgetRequest(ids=small_train.ids[:20])
    method = make_method("finetune", {"epochs": 1})
    task_a, forget_ids = build_task(trained_mlp, request, small_train, seed=3)
    task_b, _ = build_task(trained_mlp, request, small_train, seed=3)
    out_a, cost_a = method.execute(trained_mlp, task_a)
    out_b, cost_b = execute(method, trained_mlp, task_b, family=CLASSIFIER)
    assert same_weights(out_a, out_b) and not out_b.training
    assert (cost_a.gradient_steps, cost_a.examples_seen, cost_a.examples_touched) == (
        cost_b.gradient_steps,
        cost_b.examples_seen,
        cost_b.examples_touched,
    )
    assert cost_b.gradient_steps > 0 and sorted(forget_ids.tolist()) == sorted(small_train.ids[:20].tolist())
    assert not same_weights(out_b, trained_mlp)  # it trained a copy...
    assert all(not p.requires_grad for p in task_b.original.parameters())  # ...and the original stays frozen


class _Blowup(Unlearner):
    name = "blowup-test"
    guarantee = ob.Guarantee("empirical")

    def run(self, model, task):
        with torch.no_grad():
            next(model.parameters()).fill_(float("inf"))
        return model


def test_shared_execute_refuses_non_finite_weights(trained_mlp, small_train, same_weights):
    task, _ = build_task(trained_mlp, ob.ForgetRequest(ids=small_train.ids[:5]), small_train, seed=0)
    before = {k: v.clone() for k, v in trained_mlp.state_dict().items()}
    with pytest.raises(DivergedError, match="blowup-test"):
        execute(_Blowup(), trained_mlp, task, family=CLASSIFIER)
    assert all(torch.equal(before[k], v) for k, v in trained_mlp.state_dict().items())  # input untouched


def test_family_of_and_door_checks(trained_mlp, small_train):
    assert family_of(trained_mlp) is CLASSIFIER
    with pytest.raises(InvalidInputError, match="obliviate Dataset"):
        ob.unlearn(trained_mlp, [0], small_train.tensors, method="finetune")
    with pytest.raises(InvalidInputError, match="seed"):
        ob.unlearn(trained_mlp, [int(small_train.ids[0])], small_train, method="finetune", seed=-1)
    with pytest.raises(InvalidInputError, match="language-model method"):
        ob.unlearn(trained_mlp, [int(small_train.ids[0])], small_train, method="npo")
    assert LANGUAGE_MODEL.name == "language model"
