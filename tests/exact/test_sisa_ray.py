"""The Ray backend trains and retrains shards as Ray tasks with the same weights as the local backend."""

from __future__ import annotations

import pytest
import torch

from obliviate.exact import SISA


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_backend_gives_bit_identical_shards(tmp_path, small_train, sisa_recipe, local_ray):
    sisa = SISA(sisa_recipe, shards=3, slices=2)
    local = sisa.fit(small_train, tmp_path / "local")
    remote = sisa.fit(small_train, tmp_path / "ray", backend="ray")
    assert remote.model_sha256() == local.model_sha256()
    victims = [int(local.slice_ids(0)[1][0]), int(local.slice_ids(2)[0][0])]
    local.delete(victims, small_train)
    report = remote.delete(victims, small_train, backend="ray")
    assert report.slices_rebuilt == {0: [1], 2: [0, 1]}
    assert remote.manifests() == local.manifests()
    for s in range(3):
        a, b = local.shard_model(s).state_dict(), remote.shard_model(s).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
