"""The shared execute() on a language model equals LMUnlearner.execute; unlearn() takes the same path."""

from __future__ import annotations

import pytest
import torch

import obliviate as ob
from obliviate.errors import InvalidInputError
from obliviate.unlearning.execution import LANGUAGE_MODEL, build_task, execute, family_of
from obliviate.unlearning.registry import make_method


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_shared_execute_equals_the_lm_execute(trained_tiny_lm, small_authors):
    request = small_authors.request("forget10")
    settings = {"epochs": 1, "lr": 1e-3}
    a, b = make_method("grad_diff", settings), make_method("grad_diff", settings)
    task_a, _ = build_task(trained_tiny_lm, request, small_authors.train, seed=1)
    task_b, forget_ids = build_task(trained_tiny_lm, request, small_authors.train, seed=1)
    out_a, cost_a = a.execute(trained_tiny_lm, task_a)
    b.model_family, b.config = b.config_for(trained_tiny_lm)  # what LMUnlearner.execute does before the loop
    out_b, cost_b = execute(b, trained_tiny_lm, task_b, family=LANGUAGE_MODEL)
    assert family_of(trained_tiny_lm) is LANGUAGE_MODEL
    assert _same(out_a.model, out_b.model) and not _same(out_b.model, trained_tiny_lm.model)
    assert (cost_a.gradient_steps, cost_a.examples_seen) == (cost_b.gradient_steps, cost_b.examples_seen) != (0, 0)
    assert all(not p.requires_grad for p in out_b.model.parameters())
    assert len(forget_ids) == len(request.split(small_authors.train)[0].ids)


def test_unlearn_takes_a_language_model_through_the_same_entry(trained_tiny_lm, small_authors):
    request = small_authors.request("forget10")
    result = ob.unlearn(trained_tiny_lm, request, small_authors.train, method="grad_diff", settings={"epochs": 1}, seed=0)
    assert result.method == "grad_diff" and result.cost.gradient_steps > 0
    again = ob.unlearn(trained_tiny_lm, request, small_authors.train, method="grad_diff", settings={"epochs": 1}, seed=0)
    assert _same(result.model.model, again.model.model)  # seeded
    with pytest.raises(InvalidInputError, match="QADataset"):
        ob.unlearn(trained_tiny_lm, request, ob.data.digits(), method="grad_diff")
    with pytest.raises(InvalidInputError, match="classifier method"):
        ob.unlearn(trained_tiny_lm, request, small_authors.train, method="finetune")
