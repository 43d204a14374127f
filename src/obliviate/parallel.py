"""Run independent tasks locally or as Ray tasks: SISA shards, stacks of seeds.

``run_tasks(fn, items, backend="local")`` is ``[fn(item) for item in items]``; with
``backend="ray"`` each call becomes a Ray task (``ray.remote(fn)``), on a local Ray started with
``num_cpus`` workers or on the cluster at ``address``, and the results come back in the order
of ``items``. The function and its arguments must be picklable (module-level functions). Ray is
imported only for ``backend="ray"``; the local backend needs nothing installed.

The same function on the same inputs gives the same result on either backend as long as the
workers use the same torch version and thread count as the caller (each Ray task pins torch to
``threads`` threads, 1 by default, like the test suite and the oracle cache key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

from obliviate.errors import InvalidInputError

__all__ = ["BACKENDS", "run_tasks", "check_backend"]

BACKENDS = ("local", "ray")
T = TypeVar("T")
R = TypeVar("R")


def check_backend(backend: str, address: str | None = None) -> None:
    """``backend`` must be one of :data:`BACKENDS`; ``address`` only goes with ``ray``."""
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if address is not None and backend != "ray":
        raise InvalidInputError(f"--address is for the ray backend; drop it or pass --backend ray (got {backend!r}).")


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidInputError(
            "the ray backend needs Ray: pip install 'obliviate[ray]' (or use --backend local)."
        ) from exc
    return ray


def _with_threads(fn: Callable[[T], R], threads: int) -> Callable[[T], R]:
    def call(item: T) -> R:
        import torch

        torch.set_num_threads(threads)
        return fn(item)

    return call


def run_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    backend: Literal["local", "ray"] = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    threads: int = 1,
    on_done: Callable[[int, R], Any] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, locally or as Ray tasks; results in the order of ``items``.

    ``on_done(index, result)`` is called as each result arrives (for progress bars). With Ray,
    an ``address`` joins that cluster; otherwise a local Ray is started with ``num_cpus`` CPUs
    (all by default) unless one is already running in this process.
    """
    check_backend(backend, address)
    work: Sequence[T] = list(items)
    if backend == "local":
        results = []
        for i, item in enumerate(work):
            results.append(fn(item))
            if on_done is not None:
                on_done(i, results[-1])
        return results
    ray = _ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus}
        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
    remote = ray.remote(num_cpus=1)(_with_threads(fn, threads))
    pending = {remote.remote(item): i for i, item in enumerate(work)}
    results: list[Any] = [None] * len(work)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            results[i] = ray.get(ref)
            if on_done is not None:
                on_done(i, results[i])
    return results
