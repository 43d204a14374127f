"""Load and crash harness for the service: a server subprocess, filing clients, kill -9, and the checks.

Loopback only. Used by ``tests/service/test_service_kill9.py`` (small) and ``benchmarks/service_load.py``
(32 clients; 100 kills). The server (the app of ``obliviate serve`` on uvicorn) runs in its own process, so a
SIGKILL stops it at an arbitrary instruction: in the middle of a group commit, of an HTTP response, or of an
apply's retraining.

What a run checks afterwards, from the ledger on disk (:func:`check_ledger`):

- **lost**: a filing the server acknowledged (200/201) whose request is not in the ledger under its key;
- **duplicated**: a client key stored as more than one request, or acknowledged with two request ids;
- **applied twice**: a request with more than one transition to ``applied``, or an example id removed
  by two different batches (``removed_by_this_batch`` of their certificates overlap);
- **certificates**: every stored certificate is checked with :func:`obliviate.ledger.verify_certificate`
  against the target on disk (signature, data, model hash chain, ids gone).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerProcess", "HttpClient", "free_port", "file_acknowledged", "throughput", "kill_run", "check_ledger"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """The service on ``127.0.0.1:port`` in its own process (one torch thread), restartable.

    With ``preload`` (the default), each server process is forked from a parent that imported obliviate,
    FastAPI and uvicorn once (as ``gunicorn --preload`` does) and builds the app as ``obliviate serve`` does,
    so a restart after a kill takes a fraction of a second instead of the 3-5 s of imports; the parent holds
    no ledger, socket or thread when it forks. Without it, each start is a fresh
    ``python -m obliviate.cli.service serve`` with the same options."""

    def __init__(
        self, ledger: Path | str, *, port: int, options: dict | None = None, log: Path | None = None,
        preload: bool = True
    ) -> None:
        from obliviate.ledger.store import is_dsn

        # the ledger's folder, or a PostgreSQL DSN (then options["ledger_files"] names its files' folder, and log)
        self.ledger, self.port = (ledger if is_dsn(ledger) else Path(ledger)), port
        self.options = dict(options or {})  # ServiceConfig fields: sisa, data, rate, max_group, ...
        self.log = Path(log) if log else Path(self.options.get("ledger_files") or self.ledger).parent / "server.log"
        self.preload = preload
        self.proc: subprocess.Popen | None = None
        self.zygote: subprocess.Popen | None = None
        self.pid: int | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        """The same server as ``obliviate serve`` options (for a start without preload)."""
        flags = [f for k, v in self.options.items() for f in (f"--{k.replace('_', '-')}", str(v))]
        return ["serve", "--ledger", str(self.ledger), "--port", str(self.port), *flags]

    def start(self, *, env: dict[str, str] | None = None, timeout: float = 120.0) -> None:
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if self.preload:
            if self.zygote is None:
                self.zygote = subprocess.Popen(
                    [sys.executable, "-c", "from obliviate.service.loadtest import _zygote; _zygote()"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment, text=True, bufsize=1,
                )
            order = {"ledger": str(self.ledger), "port": self.port, "options": {k: str(v) for k, v in self.options.items()},
                     "env": env or {}, "log": str(self.log)}
            self.zygote.stdin.write(json.dumps(order) + "\n")
            self.zygote.stdin.flush()
            line = self.zygote.stdout.readline()
            if not line:
                raise RuntimeError(f"the preloading parent exited; see {self.log}")
            self.pid = int(line)
        else:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "obliviate.cli.service", *self._command()],
                    stdout=log, stderr=subprocess.STDOUT, env={**environment, **(env or {})},
                )
            self.pid = self.proc.pid
        self.starts += 1
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.alive():
                raise RuntimeError(f"the server exited; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"the server did not listen within {timeout} s; see {self.log}")

    def _reap(self, block: bool) -> bool:
        """Whether the server process has ended (reaped: by our Popen, or by the preloading parent)."""
        if self.pid is None:
            return True
        if not self.preload:
            if block:
                self.proc.wait()
            return self.proc.poll() is not None
        self.zygote.stdin.write(json.dumps({"wait": self.pid, "block": block}) + "\n")
        self.zygote.stdin.flush()
        return self.zygote.stdout.readline().strip() == "ended"

    def alive(self) -> bool:
        return not self._reap(block=False)

    def kill9(self) -> None:
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self._reap(block=True)
        self.pid = None

    def stop(self) -> None:
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.kill9()

    def close(self) -> None:
        """Stop the server and the preloading parent."""
        self.stop()
        if self.zygote is not None:
            self.zygote.stdin.close()
            self.zygote.wait(timeout=30)
            self.zygote = None


def _zygote() -> None:
    """The preloading parent: import once, then fork one server per line read from stdin (see ServerProcess).

    The child builds the app as ``obliviate serve`` does (:class:`ServiceConfig` from the same options)."""
    import dataclasses

    import torch

    torch.set_num_threads(1)
    import uvicorn

    import obliviate.exact  # noqa: F401  (SISA, as apply will need it)
    from obliviate.ledger.store import is_dsn
    from obliviate.service.app import ServiceConfig, create_app

    kinds = {f.name: f.type for f in dataclasses.fields(ServiceConfig)}
    for line in sys.stdin:
        order = json.loads(line)
        if "wait" in order:
            try:
                pid, _ = os.waitpid(int(order["wait"]), 0 if order["block"] else os.WNOHANG)
                ended = pid != 0
            except ChildProcessError:
                ended = True
            print("ended" if ended else "running", flush=True)
            continue
        pid = os.fork()
        if pid == 0:  # the server
            try:
                os.environ.update(order["env"])
                fd = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                options = {}
                for key, value in order["options"].items():
                    kind = str(kinds[key])
                    options[key] = (
                        float(value) if "float" in kind else int(value) if kind == "int" else
                        Path(value) if "Path" in kind else value
                    )
                ledger = order["ledger"] if is_dsn(order["ledger"]) else Path(order["ledger"])
                app = create_app(ServiceConfig(ledger=ledger, **options))
                print(f"serving on 127.0.0.1:{order['port']}", flush=True)
                uvicorn.run(app, host="127.0.0.1", port=int(order["port"]), log_level="warning", access_log=False)
            finally:
                os._exit(0)
        print(pid, flush=True)


class HttpClient:
    """One keep-alive HTTP/1.1 connection (stdlib ``http.client``: little client CPU per call)."""

    def __init__(self, port: int, token: str, *, timeout: float = 60.0) -> None:
        self.port, self.timeout = port, timeout
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        """``(status, JSON)``; a connection problem raises OSError (or http.client's errors) after closing."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            self.conn.request(method, path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        except (OSError, http.client.HTTPException, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def file_acknowledged(client: HttpClient, body: dict, *, give_up: float = 300.0) -> tuple[int, dict, float]:
    """File ``body`` (it carries a client_key), retrying the same key through connection errors until the
    server acknowledges it: ``(status, response, seconds of the successful call)``."""
    started = time.monotonic()
    while True:
        t0 = time.perf_counter()
        try:
            status, data = client.call("POST", "/requests", body)
        except (OSError, http.client.HTTPException, ValueError):
            if time.monotonic() - started > give_up:
                raise
            time.sleep(0.05)
            continue
        if status in (200, 201):
            return status, data, time.perf_counter() - t0
        if status in (429, 503) or status >= 500:  # busy or the server is going down: the same key again
            time.sleep(0.05)
            continue
        raise RuntimeError(f"filing refused with {status}: {data}")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def throughput(port: int, token: str, *, clients: int = 32, seconds: float = 10.0, warmup: float = 2.0,
               seed: int = 0) -> dict:
    """``clients`` closed-loop clients file distinct requests for ``warmup + seconds``; the numbers are over the
    last ``seconds`` only: acknowledged filings per second and the latency percentiles (ms)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = time.monotonic()
    measure_from, end = start + warmup, start + warmup + seconds

    def run(cid: int) -> None:
        rng = random.Random(seed * 1000 + cid)
        client = HttpClient(port, token)
        n = 0
        while time.monotonic() < end:
            body = {"ids": [rng.randrange(10**9)], "client_key": f"tp-{seed}-{cid}-{n}"}
            n += 1
            t0 = time.monotonic()
            try:
                status, _, took = file_acknowledged(client, body, give_up=30)
            except (OSError, RuntimeError, http.client.HTTPException):
                errors[cid] += 1
                continue
            if t0 >= measure_from and time.monotonic() <= end:
                latencies[cid].append(took)
        client.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for per in latencies for x in per]
    return {
        "clients": clients,
        "seconds": seconds,
        "acknowledged": len(flat),
        "per_second": len(flat) / seconds,
        "p50_ms": 1000 * _percentile(flat, 0.50),
        "p99_ms": 1000 * _percentile(flat, 0.99),
        "max_ms": 1000 * max(flat) if flat else float("nan"),
        "errors": sum(errors),
    }


@dataclass
class KillRun:
    acks: dict[str, str] = field(default_factory=dict)  # client key -> acknowledged request id
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # a key acknowledged with two ids
    kills: int = 0
    applies: int = 0
    latencies: list[float] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)  # from the kill to the server listening again
    final_apply_seconds: float = 0.0


def kill_run(server: ServerProcess, requester: str, operator: str, *, ids: list[int], clients: int = 8,
             kills: int = 10, seed: int = 0, between: tuple[float, float] = (0.3, 1.5), apply_every: float = 1.0,
             pause: float = 0.0, first_env: dict[str, str] | None = None, on_kill=None) -> KillRun:
    """Clients file requests (each naming one of ``ids``) while an operator applies every ``apply_every`` s and
    the server is killed with SIGKILL ``kills`` times, at a seeded random moment ``between`` restarts; each
    client waits ``pause`` s after each acknowledged filing (the ledger's apply computes evidence for every
    request, so the number filed bounds the run's length); the first life of the server runs with ``first_env`` (e.g. ``OBLIVIATE_CRASH_AT``). Ends with every client's
    last filing acknowledged and every due request applied."""
    rng = random.Random(seed)
    run = KillRun()
    lock = threading.Lock()
    stop = threading.Event()
    server.start(env=first_env)

    def client_loop(cid: int) -> None:
        crng = random.Random(seed * 7919 + cid)
        client = HttpClient(server.port, requester)
        n = 0
        while not stop.is_set():
            key = f"k{seed}-{cid}-{n}"
            n += 1
            _, data, took = file_acknowledged(client, {"ids": [crng.choice(ids)], "client_key": key})
            with lock:
                previous = run.acks.setdefault(key, data["request_id"])
                if previous != data["request_id"]:
                    run.conflicts.append((key, previous, data["request_id"]))
                run.latencies.append(took)
            stop.wait(pause)
        client.close()

    def operator_loop() -> None:
        client = HttpClient(server.port, operator, timeout=300)
        while not stop.is_set():
            time.sleep(apply_every)
            try:
                status, _ = client.call("POST", "/apply")
                if status == 200:
                    with lock:
                        run.applies += 1
            except (OSError, http.client.HTTPException, ValueError):
                pass

    threads = [threading.Thread(target=client_loop, args=(c,), daemon=True) for c in range(clients)]
    threads.append(threading.Thread(target=operator_loop, daemon=True))
    for t in threads:
        t.start()
    for k in range(kills):
        time.sleep(rng.uniform(*between))
        killed = time.monotonic()
        server.kill9()
        run.kills += 1
        if on_kill is not None:
            on_kill(k)
        server.start()
        run.restart_seconds.append(time.monotonic() - killed)
    time.sleep(rng.uniform(*between))
    stop.set()
    for t in threads:
        t.join(timeout=600)
    client = HttpClient(server.port, operator, timeout=600)
    final = time.monotonic()
    for _ in range(5):  # finish: every due request applied (a batch a kill left scheduled is resumed first)
        status, outcome = client.call("POST", "/apply")
        if status == 409:  # the operator thread's last apply is still running
            time.sleep(1)
            continue
        if status != 200:
            raise RuntimeError(f"the final apply failed with {status}: {outcome}")
        if outcome["nothing_due"]:
            break
    run.final_apply_seconds = time.monotonic() - final
    client.close()
    server.close()
    return run


def check_ledger(folder: Path | str, acks: dict[str, str], token_id: str, target, *, files: Path | None = None) -> dict:
    """The checks of the module docstring on the ledger in ``folder`` (or at a PostgreSQL DSN, its files in
    ``files``); every count should be 0 but ``requests`` and ``certificates``."""
    from obliviate.ledger import Ledger, certificate_path, verify_certificate

    prefix = f"svc:{token_id}:"
    with Ledger(folder, files=files) as book:
        requests = [r for r in book.requests() if r.key.startswith(prefix)]
        by_key: dict[str, list[str]] = {}
        for r in requests:
            by_key.setdefault(r.key[len(prefix):], []).append(r.request_id)
        lost = [k for k, rid in acks.items() if by_key.get(k) != [rid]]
        duplicated = [k for k, rids in by_key.items() if len(rids) > 1]
        applied_moves: dict[str, int] = {}
        for t in book.history():
            if t.to_status == "applied":
                applied_moves[t.request_id] = applied_moves.get(t.request_id, 0) + 1
        applied_twice = [rid for rid, n in applied_moves.items() if n > 1]
        removed_by: dict[int, str] = {}
        removed_twice = set()
        certificates = book.certificates()
        for body in certificates.values():
            cert = json.loads(body)
            for i in cert["removed_by_this_batch"]:
                if removed_by.setdefault(int(i), cert["batch_id"]) != cert["batch_id"]:
                    removed_twice.add(int(i))
        failed_checks = {}
        for rid in certificates:
            result = verify_certificate(certificate_path(book.folder, rid), target, ledger=book, mark=False)
            if not result.ok:
                failed_checks[rid] = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
        open_left = [r.request_id for r in requests if r.status in ("received", "scheduled")]
        counts = book.counts()
    return {
        "requests": len(requests),
        "acknowledged": len(acks),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "applied_twice": len(applied_twice),
        "ids_removed_by_two_batches": len(removed_twice),
        "certificates": len(certificates),
        "batches": len({json.loads(body)["batch_id"] for body in certificates.values()}),
        "certificates_failing": len(failed_checks),
        "left_open": len(open_left),
        "counts": counts,
        "examples": {"lost": lost[:5], "duplicated": duplicated[:5], "failing": dict(list(failed_checks.items())[:3])},
    }
