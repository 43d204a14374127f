"""The retrained oracle: equal to training on the retain set, cached, and safe against corrupt caches."""

from __future__ import annotations

import pytest
import torch

import obliviate as ob
from obliviate.training import oracle
from obliviate.training.oracle import default_cache_dir, oracle_key


@pytest.fixture(scope="module")
def data(small_train):
    return small_train


@pytest.fixture(scope="module")
def request_(data):
    return ob.ForgetRequest(data.sample_ids(0.1, seed=0))


@pytest.fixture(scope="module")
def reference(tiny_recipe, data, request_):
    _, retain = request_.split(data)
    return ob.train(tiny_recipe, retain)


def cache_files(folder):
    return sorted((folder / "oracles").glob("*.safetensors"))


def forbid_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("train() was called: the cache was not used")

    monkeypatch.setattr(oracle, "train", fail)


def test_cache_goes_to_the_folder_the_test_environment_names(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("OBLIVIATE_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "obliviate")


def test_retrain_equals_training_on_the_retain_set(tiny_recipe, data, request_, reference, same_weights):
    assert same_weights(ob.retrain(tiny_recipe, data, request_, cache=False), reference)
    cached = ob.retrain(tiny_recipe, data, request_)  # default cache: $OBLIVIATE_CACHE, set per test
    assert same_weights(cached, reference)
    assert len(cache_files(default_cache_dir())) == 1


def test_second_call_loads_from_the_cache(tiny_recipe, data, request_, reference, tmp_path, monkeypatch, same_weights):
    first = ob.retrain(tiny_recipe, data, request_, cache=tmp_path)
    (path,) = cache_files(tmp_path)
    assert path.stem == oracle_key(tiny_recipe, data, request_.split(data)[1].ids)
    forbid_training(monkeypatch)
    second = ob.retrain(tiny_recipe, data, request_, cache=tmp_path)
    assert same_weights(second, first) and same_weights(second, reference)
    assert ob.storage.spec_of(second)["recipe"] == tiny_recipe.to_dict()
    with pytest.raises(AssertionError, match="cache was not used"):
        ob.retrain(tiny_recipe, data, request_, cache=False)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_corrupt_cache_file_is_rebuilt_not_loaded(
    tiny_recipe, data, request_, reference, tmp_path, monkeypatch, damage, same_weights
):
    ob.retrain(tiny_recipe, data, request_, cache=tmp_path)
    (path,) = cache_files(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-3] ^= 0x40
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray(b"not a checkpoint")
    path.write_bytes(bytes(raw))

    calls = []
    real_train = oracle.train

    def counting_train(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(oracle, "train", counting_train)
    rebuilt = ob.retrain(tiny_recipe, data, request_, cache=tmp_path)
    assert calls == [1]
    assert same_weights(rebuilt, reference)
    assert ob.storage.state_sha256(ob.load_model(path).state_dict()) == ob.storage.state_sha256(reference.state_dict())
    forbid_training(monkeypatch)  # the rebuilt file is good again
    assert same_weights(ob.retrain(tiny_recipe, data, request_, cache=tmp_path), reference)


def test_cache_keys_separate_requests_recipes_and_data(tiny_recipe, data, request_, tmp_path):
    retained = request_.split(data)[1].ids
    other = ob.ForgetRequest(data.sample_ids(0.1, seed=1))
    keys = {
        oracle_key(tiny_recipe, data, retained),
        oracle_key(tiny_recipe, data, other.split(data)[1].ids),
        oracle_key(tiny_recipe.with_seed(1), data, retained),
        oracle_key(tiny_recipe, data.without(data.ids[-1:]), retained),
    }
    assert len(keys) == 4
    threads = torch.get_num_threads()
    try:  # thread count changes float reductions, so it is part of the key
        torch.set_num_threads(threads + 1)
        assert oracle_key(tiny_recipe, data, retained) not in keys
    finally:
        torch.set_num_threads(threads)
    assert oracle_key(tiny_recipe, data, retained[::-1]) == oracle_key(tiny_recipe, data, retained)
    # the same ids asked again (another request id) share the cached oracle
    again = ob.ForgetRequest(request_.ids, note="filed twice")
    ob.retrain(tiny_recipe, data, request_, cache=tmp_path)
    ob.retrain(tiny_recipe, data, again, cache=tmp_path)
    ob.retrain(tiny_recipe, data, other, cache=tmp_path)
    assert len(cache_files(tmp_path)) == 2


def test_retrain_validates_the_request(tiny_recipe, data):
    with pytest.raises(ob.errors.UnknownIdsError):
        ob.retrain(tiny_recipe, data, ob.ForgetRequest([10**9]))
    with pytest.raises(ob.errors.ForgetAllError):
        ob.retrain(tiny_recipe, data, ob.ForgetRequest(data.ids))
