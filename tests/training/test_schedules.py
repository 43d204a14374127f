"""The one schedule module: the classifier schedules unchanged, the linear warm-up as Hugging Face's, shifted by one."""

from __future__ import annotations

import math

import pytest
import torch

from obliviate.errors import InvalidInputError
from obliviate.training.loop import make_scheduler
from obliviate.training.schedules import make_schedule, schedule_factor


def _lrs(scheduler, steps):
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)


@pytest.mark.parametrize("name", ["constant", "cosine", "step"])
def test_classifier_schedules_are_the_trainers_bit_for_bit(name):
    total = 37
    assert _lrs(make_schedule(name, _optimizer(), total), total + 3) == _lrs(make_scheduler(name, _optimizer(), total), total + 3)


def test_linear_warmup_is_hugging_faces_with_the_ramp_from_step_one():
    from transformers import get_linear_schedule_with_warmup

    total, warmup = 50, 7
    ours = schedule_factor("linear", total, warmup_steps=warmup)
    hf = get_linear_schedule_with_warmup(_optimizer(), warmup, total).lr_lambdas[0]
    for t in range(total + 2):
        expected = hf(t + 1) if t < warmup else hf(t)
        assert ours(t) == pytest.approx(expected, abs=1e-12), t
    assert ours(0) == pytest.approx(1 / warmup) and ours(warmup - 1) == 1.0 and ours(total) == 0.0


def test_the_lm_finetune_schedule_is_unchanged():
    """lm.training.finetune used (t+1)/W while warming up, then (T-t)/(T-W): the shared schedule is that."""
    total, warmup = 40, int(0.2 * 40)
    f = schedule_factor("linear", total, warmup_steps=warmup)
    for t in range(total):
        old = (t + 1) / warmup if t < warmup else max(0.0, (total - t) / max(1, total - warmup))
        assert f(t) == old


def test_cosine_without_warmup_reaches_zero_and_unknown_name_is_refused():
    f = schedule_factor("cosine", 10)
    assert f(0) == 1.0 and f(10) == pytest.approx(0.0, abs=1e-12) and f(5) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))
    with pytest.raises(InvalidInputError, match="schedule must be one of"):
        schedule_factor("exponential", 10)
