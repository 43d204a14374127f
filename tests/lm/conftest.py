"""Shared language-model fixtures: a small fictitious-authors benchmark and tiny GPTs on it.

All session-scoped and cheap (seconds): treat them as read-only; call ``.copy()`` on a model
before changing it.

- ``small_authors``: 10 authors x 4 QA pairs, 2 holdout authors, seed 0 (forget10 = 1 author).
- ``tiny_lm``: an untrained 2-layer GPT-2 (d=32) with a byte-level BPE tokenizer on that text.
- ``trained_tiny_lm``: ``tiny_lm`` fine-tuned on every trained author plus the world facts (the
  target model of the authors suite) until it puts clearly more probability on trained answers
  than on the holdout authors'.
- ``tiny_retain_lm``: the same recipe on the retain authors of forget10 (plus world facts): the oracle.
- ``lm_cache``: the folder both are cached in; ``run_authors(tiny_lm, benchmark=small_authors,
  recipe=tiny_test_recipe, cache=lm_cache)`` finds them there instead of training again.
"""

from __future__ import annotations

import pytest

from obliviate.data.authors import fictitious_authors
from obliviate.lm.training import FinetuneRecipe, retain_model, target_model
from obliviate.models.lm import tiny_gpt

TINY_TEST_RECIPE = FinetuneRecipe(epochs=25, lr=5e-3, batch_size=8, weight_decay=0.0, warmup=0.05, seed=0)


@pytest.fixture(scope="session")
def tiny_test_recipe():
    """The fine-tuning recipe the tiny target and retain models are cached under (``TINY_TEST_RECIPE``)."""
    return TINY_TEST_RECIPE


@pytest.fixture(scope="session")
def small_authors():
    return fictitious_authors(n_authors=10, qa_per_author=4, n_holdout=2, seed=0)


@pytest.fixture(scope="session")
def tiny_lm(small_authors):
    return tiny_gpt(small_authors.texts(), seed=0, n_layer=2, n_embd=32, n_head=2, vocab_size=512, max_length=64)


@pytest.fixture(scope="session")
def lm_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lm-cache")


@pytest.fixture(scope="session")
def trained_tiny_lm(tiny_lm, small_authors, lm_cache):
    return target_model(tiny_lm, small_authors, recipe=TINY_TEST_RECIPE, cache=lm_cache).lm


@pytest.fixture(scope="session")
def tiny_retain_lm(tiny_lm, small_authors, lm_cache):
    return retain_model(tiny_lm, small_authors, "forget10", recipe=TINY_TEST_RECIPE, cache=lm_cache).lm
