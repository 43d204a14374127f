"""Shared fixtures: the digits benchmark split, small recipes, a trained original, requests.

Session-scoped fixtures are built once and shared: treat them as read-only (use ``original``,
a fresh copy, when a test needs a model it may change). Every test runs with
``OBLIVIATE_CACHE`` pointed at its own temporary folder, so nothing is written to ~/.cache,
and torch uses one thread.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

import obliviate as ob

# The models under test are tiny: one thread is as fast, and several pytest or benchmark
# processes sharing two cores do not stall each other in spin-waits (8x slower otherwise).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Oracle caches and other default-path writes go to a fresh temporary folder per test."""
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path_factory.mktemp("obliviate-cache")))


@pytest.fixture(scope="session")
def digits():
    """sklearn's bundled digits as an obliviate Dataset (1,797 x 64, ids 0..1796)."""
    return ob.data.digits()


@pytest.fixture(scope="session")
def digits_split(digits):
    """The default benchmark split: ``digits.split(test_size=0.25, seed=0)`` -> (train, test)."""
    return digits.split(test_size=0.25, seed=0)


@pytest.fixture(scope="session")
def train_set(digits_split):
    return digits_split[0]


@pytest.fixture(scope="session")
def test_set(digits_split):
    return digits_split[1]


@pytest.fixture(scope="session")
def small_train(train_set):
    """The first 400 training examples (ids in order): for tests that train several times."""
    return train_set.subset(train_set.ids[:400])


@pytest.fixture(scope="session")
def fast_recipe():
    """The benchmark MLP recipe cut to 5 epochs (~0.1 s to train, ~93% digits test accuracy)."""
    return ob.Recipe(model="mlp", epochs=5, lr=0.05, seed=0)


@pytest.fixture(scope="session")
def tiny_recipe():
    """A one-hidden-layer MLP, 2 epochs: for tests that only need *a* trained model, fast."""
    return ob.Recipe(model="mlp", epochs=2, lr=0.05, seed=0, model_options={"hidden": (32,)})


@pytest.fixture(scope="session")
def trained_mlp(fast_recipe, train_set):
    """``ob.train(fast_recipe, train_set)``, shared by the session: do not modify it."""
    return ob.train(fast_recipe, train_set)


@pytest.fixture
def original(trained_mlp):
    """A private copy of the trained original for tests that may change it."""
    return copy.deepcopy(trained_mlp)


@pytest.fixture(scope="session")
def class_request(train_set):
    """The class-forget scenario: every training example of class 3."""
    return ob.ForgetRequest(train_set.ids_of_class(3))


@pytest.fixture(scope="session")
def random_request(train_set):
    """The random-10pct scenario: ``train_set.sample_ids(0.1, seed=0)``."""
    return ob.ForgetRequest(train_set.sample_ids(0.1, seed=0))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="session")
def same_weights():
    """``same_weights(a, b)``: the two modules' state dicts have the same keys and bit-equal tensors."""
    return _same_weights


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run the CLI's entry point in-process: returns (exit code, stdout, stderr)."""
    from obliviate.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        monkeypatch.setattr(sys, "argv", ["obliviate", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run
