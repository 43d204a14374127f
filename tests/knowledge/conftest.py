"""Knowledge-suite fixtures: a small benchmark and an untrained tiny GPT on its text (about a second).

The tiny GPT knows no facts: it prefers the right choice of some questions by chance, and the suite's
filter keeps exactly those, which is all the pipeline tests need. Treat both as read-only.
"""

from __future__ import annotations

import pytest

from obliviate.data.knowledge import knowledge_benchmark
from obliviate.models.lm import tiny_gpt

SMALL_LIMITS = {"elements": 8, "geography": 6, "compounds": 6}


@pytest.fixture(scope="session")
def small_knowledge():
    return knowledge_benchmark(limit=SMALL_LIMITS, seed=0)


@pytest.fixture(scope="session")
def kn_lm(small_knowledge):
    bench = small_knowledge
    texts = [q.question for q in bench.questions] + [c for q in bench.questions for c in q.choices]
    texts += [it.answer for it in bench.corpus]
    return tiny_gpt(texts, seed=0, n_layer=2, n_embd=32, n_head=2, vocab_size=600, max_length=128)
