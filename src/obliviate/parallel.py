"""Run independent tasks locally or as Ray tasks: SISA shards, stacks of seeds.

``run_tasks(fn, items, backend="local")`` is ``[fn(item) for item in items]``; with
``backend="ray"`` each call becomes a Ray task (``ray.remote(fn)``), on a local Ray started with
``num_cpus`` workers or on the cluster at ``address``, and the results come back in the order
of ``items``. The function and its arguments must be picklable (module-level functions). Ray is
imported only for ``backend="ray"``; the local backend needs nothing installed.

The same function on the same inputs gives the same result on either backend as long as the
workers use the same torch version and thread count as the caller (each Ray task pins torch to
``threads`` threads, 1 by default, like the test suite and the oracle cache key).

Which Ray: without ``address`` a NEW local Ray is started (Ray's ``address="local"``), never a
cluster Ray would otherwise find by itself (``RAY_ADDRESS`` or the last ``ray start`` on this
machine, whose CPUs and other users the caller did not ask for); with ``address`` (``host:port``,
``ray://host:port``, or ``"auto"`` for Ray's own discovery) that cluster is joined. A Ray that
``run_tasks`` connected earlier in this process is reused when the next call asks for the same
one and shut down and replaced when it asks for another, so ``address`` is always honoured; a
Ray the caller initialised itself is used as it is.

Ray workers import obliviate from their own disk when they start, not from the caller's memory:
a node with another version, or a source tree edited while a run was under way, would mix two
versions of the code in one result. Every Ray task therefore reports :data:`CODE_DIGEST` (a
sha256 of the package's source files as its process first imported this module) and a task
whose digest differs from the caller's fails the run with an error saying so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from obliviate.errors import InvalidInputError

__all__ = ["BACKENDS", "CODE_DIGEST", "run_tasks", "check_backend", "code_digest"]

BACKENDS = ("local", "ray")
T = TypeVar("T")
R = TypeVar("R")


def code_digest(root: Path | None = None) -> str:
    """sha256 over the obliviate package's ``.py`` files (relative path and bytes, in path order)."""
    root = root or Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


#: This process's :func:`code_digest`, taken when it first imported this module (with the rest of the package).
CODE_DIGEST = code_digest()


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


def _with_threads(fn: Callable[[T], R], threads: int) -> Callable[[T], tuple[R, float, int, str]]:
    """``fn`` with torch pinned to ``threads`` threads; returns (result, seconds inside the worker, worker pid,
    the worker's :data:`CODE_DIGEST`)."""

    def call(item: T) -> tuple[R, float, int, str]:
        import os
        import time

        import torch

        from obliviate.parallel import CODE_DIGEST

        torch.set_num_threads(threads)
        start = time.perf_counter()
        result = fn(item)
        return result, time.perf_counter() - start, os.getpid(), CODE_DIGEST

    return call


# What run_tasks itself asked ray.init for in this process ("local" or an address); None: it has not.
_connected: dict[str, Any] = {"target": None}


def _connect(ray, address: str | None, num_cpus: int | None) -> None:
    """Connect to the Ray asked for (see the module docstring): reuse, replace, or start/join one."""
    target = address or "local"
    if ray.is_initialized():
        if _connected["target"] is None or _connected["target"] == target:
            return  # the caller's own Ray, or the one asked for
        ray.shutdown()  # ours, but another cluster is asked for now
    if address and num_cpus is not None:
        raise InvalidInputError(
            f"num_cpus={num_cpus} is for a local Ray; a cluster at {address!r} has its own CPUs: drop one of them."
        )
    kwargs: dict[str, Any] = {"address": address} if address else {"address": "local", "num_cpus": num_cpus}
    ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
    _connected["target"] = target


def run_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    backend: Literal["local", "ray"] = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    threads: int = 1,
    on_done: Callable[[int, R], Any] | None = None,
    timings: list[dict[str, Any]] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, locally or as Ray tasks; results in the order of ``items``.

    ``on_done(index, result)`` is called as each result arrives (for progress bars). With Ray,
    an ``address`` joins that cluster; otherwise a new local Ray is started with ``num_cpus`` CPUs
    (all by default); see the module docstring for a Ray already connected in this process.

    ``timings``, if given, is filled with one ``{"seconds", "worker"}`` per item in the order of
    ``items``: the seconds ``fn`` ran (inside the Ray worker, without scheduling and transfers)
    and the process that ran it, so a caller can tell compute from the backend's overhead.
    """
    check_backend(backend, address)
    work: Sequence[T] = list(items)
    times: list[dict[str, Any]] = [{} for _ in work]
    results: list[Any] = [None] * len(work)
    if backend == "local":
        import os
        import time

        for i, item in enumerate(work):
            start = time.perf_counter()
            results[i] = fn(item)
            times[i] = {"seconds": time.perf_counter() - start, "worker": os.getpid()}
            if on_done is not None:
                on_done(i, results[i])
    else:
        ray = _ray()
        _connect(ray, address, num_cpus)
        remote = ray.remote(num_cpus=1)(_with_threads(fn, threads))
        pending = {remote.remote(item): i for i, item in enumerate(work)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                results[i], seconds, worker, digest = ray.get(ref)
                if digest != CODE_DIGEST:
                    raise InvalidInputError(
                        f"a Ray worker (pid {worker}) runs different obliviate code (sources {digest[:12]}) than this "
                        f"process ({CODE_DIGEST[:12]}): install the same version on every node, and do not edit the "
                        "source tree while a run is under way; then run again."
                    )
                times[i] = {"seconds": seconds, "worker": worker}
                if on_done is not None:
                    on_done(i, results[i])
    if timings is not None:
        timings.extend(times)
    return results
