"""run_tasks: the local and Ray backends give the same results in the same order."""

import operator

import pytest
import torch

from obliviate.errors import InvalidInputError
from obliviate.parallel import run_tasks


def square_and_threads(x: int) -> tuple[int, int]:
    import torch

    return x * x, torch.get_num_threads()


def test_local_backend_is_a_map_in_order():
    seen = []
    assert run_tasks(square_and_threads, [3, 1, 2], on_done=lambda i, r: seen.append(i))[0][0] == 9
    assert seen == [0, 1, 2]


def test_ray_backend_matches_local_and_pins_threads():
    pytest.importorskip("ray")
    # Ray workers import functions by module; this test file is not importable there, the stdlib is.
    assert run_tasks(abs, [-3, 1, -2], backend="ray", num_cpus=2) == [3, 1, 2]
    assert run_tasks(operator.call, [torch.get_num_threads] * 2, backend="ray", num_cpus=2, threads=1) == [1, 1]


@pytest.mark.parametrize(("backend", "address"), [("dask", None), ("local", "ray://head:10001")])
def test_bad_backend_or_address_is_named(backend, address):
    with pytest.raises(InvalidInputError, match="backend|address"):
        run_tasks(square_and_threads, [1], backend=backend, address=address)
