"""run_tasks: the local and Ray backends give the same results in the same order, on the Ray asked for."""

import operator
import sys

import pytest
import torch

from obliviate import parallel
from obliviate.errors import InvalidInputError
from obliviate.parallel import run_tasks


def square_and_threads(x: int) -> tuple[int, int]:
    import torch

    return x * x, torch.get_num_threads()


def node_of_worker(_item: int) -> str:
    """The Ray node the task ran on (shipped by value: this file is not importable on the workers)."""
    import ray

    return ray.get_runtime_context().get_node_id()


def test_local_backend_is_a_map_in_order():
    seen, timings = [], []
    out = run_tasks(square_and_threads, [3, 1, 2], on_done=lambda i, r: seen.append(i), timings=timings)
    assert [r[0] for r in out] == [9, 1, 4]
    assert seen == [0, 1, 2]
    assert len(timings) == 3 and all(t["seconds"] >= 0 and isinstance(t["worker"], int) for t in timings)


def test_ray_backend_matches_local_and_pins_threads(monkeypatch):
    """Also: a RAY_ADDRESS left in the environment (or the last `ray start` on the machine) is not
    joined silently; without --address run_tasks starts its own local Ray with the CPUs asked for."""
    ray = pytest.importorskip("ray")
    ray.shutdown()
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # nothing listens there
    timings = []
    try:
        # Ray workers import functions by module; this test file is not importable there, the stdlib is.
        assert run_tasks(abs, [-3, 1, -2], backend="ray", num_cpus=2, timings=timings) == [3, 1, 2]
        assert ray.cluster_resources().get("CPU") == 2
        assert len(timings) == 3 and all(t["seconds"] >= 0 for t in timings)
        assert run_tasks(operator.call, [torch.get_num_threads] * 2, backend="ray", num_cpus=2, threads=1) == [1, 1]
        # a worker whose obliviate sources differ from this process's (another node's version, or a tree
        # edited during the run) fails the run instead of mixing two versions of the code into one result
        monkeypatch.setattr(parallel, "CODE_DIGEST", "0" * 64)
        with pytest.raises(InvalidInputError, match="different obliviate code"):
            run_tasks(abs, [1], backend="ray", num_cpus=2)
    finally:
        ray.shutdown()


def test_address_is_honoured_after_a_local_ray_ran():
    """A second call with --address runs on that cluster, not on the local Ray the first call started."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        local_node = run_tasks(node_of_worker, [0], backend="ray", num_cpus=1)[0]
        joined = run_tasks(node_of_worker, [0, 1], backend="ray", address=cluster.address)
        assert joined == [cluster.head_node.node_id] * 2
        assert local_node != cluster.head_node.node_id
        with pytest.raises(InvalidInputError, match="num_cpus"):
            run_tasks(abs, [1], backend="ray", address="127.0.0.1:2", num_cpus=2)
    finally:
        ray.shutdown()
        cluster.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.parametrize(("backend", "address"), [("dask", None), ("local", "ray://head:10001")])
def test_bad_backend_or_address_is_named(backend, address):
    with pytest.raises(InvalidInputError, match="backend|address"):
        run_tasks(square_and_threads, [1], backend=backend, address=address)
