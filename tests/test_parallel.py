"""run_tasks: the local and Ray backends give the same results in the same order."""

import pytest

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
    local = [r[0] for r in run_tasks(square_and_threads, range(5))]
    remote = run_tasks(square_and_threads, range(5), backend="ray", num_cpus=2)
    assert [r[0] for r in remote] == local
    assert {r[1] for r in remote} == {1}


@pytest.mark.parametrize(("backend", "address"), [("dask", None), ("local", "ray://head:10001")])
def test_bad_backend_or_address_is_named(backend, address):
    with pytest.raises(InvalidInputError, match="backend|address"):
        run_tasks(square_and_threads, [1], backend=backend, address=address)
