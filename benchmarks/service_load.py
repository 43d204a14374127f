"""The service under load and under kill -9: filing throughput and latency, and the ledger's guarantees.

Two parts, both on loopback against ``obliviate serve`` in its own process (forked from a preloaded
parent, see :class:`obliviate.service.loadtest.ServerProcess`):

1. **throughput**: ``--clients`` closed-loop clients (threads with keep-alive connections, in this
   process) file distinct requests for ``--seconds`` after a warm-up; a filing counts when the server
   acknowledged it, i.e. after the ledger's fsynced commit. Reported: acknowledged filings per second,
   p50/p99/max latency, and the group-commit counters (transactions, largest group). Run with group
   commit (``--max-group 512``) and without it (``--max-group 1``), and at 1 client for the unloaded
   latency. Targets (issue 17): >= 500 filings/s with p99 <= 50 ms at 32 clients on 2 cores.
2. **kills**: ``--kill-clients`` clients file (each pausing ``--pause`` s after an acknowledgement) while an
   operator applies every second to a SISA ensemble and the server is SIGKILLed ``--kills`` times at seeded
   random moments (the first life also dies inside its first apply, after the ensemble committed the batch,
   via ``OBLIVIATE_CRASH_AT=deleted``). Afterwards, from the ledger on disk: acknowledged requests lost,
   duplicated, applied twice, ids removed by two batches, certificates that fail verification (all targets: 0).

With ``--postgres`` both parts run on a PostgreSQL ledger instead (``--ledger postgresql://...``): the
script starts a throwaway server on loopback (initdb into the run's folder, as the tests do; as root it
runs it as the ``postgres`` user), gives each run a fresh schema, and keeps the files (key, certificate
exports, tokens) in ``--ledger-files`` folders; ``--dsn`` uses a server you started instead.

Prints a markdown block and writes the numbers as JSON to ``--out``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/service_load.py [--seconds 15] [--kills 100] [--out FILE]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/service_load.py --postgres [--seconds 15] [--kills 100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import obliviate as ob
from obliviate.exact import SISA
from obliviate.ledger import Ledger, SisaTarget
from obliviate.service import TokenStore
from obliviate.service.loadtest import HttpClient, ServerProcess, check_ledger, free_port, kill_run, throughput

torch.set_num_threads(1)


def _group_counters(port: int, operator: str) -> dict:
    client = HttpClient(port, operator)
    try:
        status, data = client.call("GET", "/status")
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        client.close()
    return data.get("group_commit", {}) if status == 200 else {}


@contextmanager
def throwaway_postgres(root: Path):
    """A PostgreSQL server on 127.0.0.1 for this run (initdb under ``root``, stopped at the end): its base DSN."""
    user = None
    if os.geteuid() == 0:  # initdb refuses root
        user = "postgres"
    as_user = (lambda argv: argv) if user is None else (lambda argv: ["runuser", "-u", user, "--", *argv])
    home = Path(tempfile.mkdtemp(prefix="obliviate-pg-"))  # not under root: the server user must reach it
    if user is not None:
        shutil.chown(home, user=user)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(as_user(["initdb", "-D", str(home / "data"), "-A", "trust", "-U", "obliviate", "-E", "UTF8",
                            "--locale=C"]), check=True, capture_output=True, env=env)
    subprocess.run(as_user(["pg_ctl", "-D", str(home / "data"), "-l", str(home / "server.log"), "-w", "-o",
                            f"-k {home} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"]),
                   check=True, capture_output=True, env=env)
    try:
        yield f"postgresql://obliviate@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user(["pg_ctl", "-D", str(home / "data"), "-m", "fast", "-w", "stop"]),
                       capture_output=True, env=env)
        shutil.rmtree(home, ignore_errors=True)


def new_ledger(folder: Path, dsn: str | None) -> tuple[Path | str, Path | None, Path]:
    """A new, empty ledger for one run: ``(location, files, token folder)``; on PostgreSQL in a schema of its own."""
    if dsn is None:
        Ledger(folder / "ledger", create=True).close()
        return folder / "ledger", None, folder / "ledger"
    import psycopg

    schema = "run_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    location = f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"
    Ledger(location, files=folder / "files", create=True).close()
    return location, folder / "files", folder / "files"


def measure_throughput(
    root: Path, *, clients: int, seconds: float, warmup: float, max_group: int, seed: int, dsn: str | None = None
) -> dict:
    folder = root / f"tp-{clients}-{max_group}"
    folder.mkdir(parents=True)
    location, files, token_folder = new_ledger(folder, dsn)
    with TokenStore(token_folder) as store:
        requester, _ = store.create("requester")
        operator, _ = store.create("operator")
    options = {"rate": 0, "max_group": max_group, **({"ledger_files": files} if files else {})}
    server = ServerProcess(location, port=free_port(), options=options, log=folder / "server.log")
    server.start()
    try:
        result = throughput(server.port, requester, clients=clients, seconds=seconds, warmup=warmup, seed=seed)
        result["group_commit"] = _group_counters(server.port, operator)
    finally:
        server.close()
    result["max_group"] = max_group
    return result


def measure_kills(
    root: Path, *, kills: int, clients: int, pause: float, between: tuple[float, float], seed: int, dsn: str | None = None
) -> dict:
    folder = root / "kills"
    folder.mkdir()
    data = ob.data.digits(writers=12)
    data = data.subset(data.ids[:600])
    npz = folder / "data.npz"
    np.savez(npz, X=data.X, y=data.y, ids=data.ids, owners=data.owners.astype(str))
    recipe = ob.Recipe(model="mlp", epochs=2, lr=0.05, seed=0, model_options={"hidden": (32,)})
    SISA(recipe, shards=4, slices=2, assign="owner", seed=0).fit(data, folder / "sisa")
    location, files, token_folder = new_ledger(folder, dsn)
    with TokenStore(token_folder) as store:
        requester, record = store.create("requester")
        operator, _ = store.create("operator")
    server = ServerProcess(
        location, port=free_port(), log=folder / "server.log",
        options={"sisa": folder / "sisa", "data": npz, "rate": 0, **({"ledger_files": files} if files else {})},
    )
    started = time.monotonic()
    run = kill_run(
        server, requester, operator, ids=[int(i) for i in data.ids[:300]], clients=clients, kills=kills, seed=seed,
        between=between, apply_every=1.0, pause=pause, first_env={"OBLIVIATE_CRASH_AT": "deleted"},
    )
    run_seconds = time.monotonic() - started
    checked = time.monotonic()
    report = check_ledger(location, run.acks, record.token_id, SisaTarget(folder / "sisa"), files=files)
    report.update(
        kills=run.kills,
        server_starts=server.starts,
        applies_during_run=run.applies,
        key_conflicts=len(run.conflicts),
        run_seconds=round(run_seconds, 1),
        check_seconds=round(time.monotonic() - checked, 1),
        restart_p50_s=round(float(np.median(run.restart_seconds)), 3) if run.restart_seconds else None,
        final_apply_seconds=round(run.final_apply_seconds, 1),
    )
    return report


def markdown(results: dict, command: str) -> str:
    marker = "ledger-postgres" if results.get("backend") == "postgresql" else "service"
    title = " on a PostgreSQL ledger" if marker == "ledger-postgres" else ""
    lines = [f"<!-- {marker}:begin -->", f"### Service{title}: filing under load, and kill -9 (issue 17)", "",
             f"`{command}`: {results['wall_seconds']:.0f} s wall on {results['machine']}; load average "
             f"{results['load_before']} before, {results['load_after']} after (other jobs shared the 2 cores)."]
    if results["throughput"]:
        lines += ["", "| clients | group commit | filings/s | p50 ms | p99 ms | max ms | transactions | largest group | errors |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["throughput"]:
        g = r.get("group_commit", {})
        lines.append(
            f"| {r['clients']} | {'on' if r['max_group'] > 1 else 'off'} | {r['per_second']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {g.get('groups', '?')} | {g.get('largest_group', '?')} | "
            f"{r['errors']} |"
        )
    k = results.get("kills")
    if k:
        lines += ["", f"Kill run: {k['kills']} SIGKILLs (+1 inside the first apply), {k['server_starts']} server starts "
                  f"(median restart {k['restart_p50_s']} s), {k['acknowledged']} acknowledged filings, "
                  f"{k['certificates']} certificates from {k['batches']} batches ({k['applies_during_run']} applies "
                  f"completed between kills); run {k['run_seconds']} s, checks {k['check_seconds']} s.", "",
                  "| lost | duplicated | applied twice | ids removed by two batches | certificates failing | left open |",
                  "|---:|---:|---:|---:|---:|---:|",
                  f"| {k['lost']} | {k['duplicated']} | {k['applied_twice']} | {k['ids_removed_by_two_batches']} | "
                  f"{k['certificates_failing']} | {k['left_open']} |"]
    lines.append(f"<!-- {marker}:end -->")
    return "\n".join(lines)


@contextmanager
def _given(dsn: str | None):
    yield dsn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per throughput run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs in the kill run (0: skip it)")
    parser.add_argument("--kill-clients", type=int, default=8)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds each kill-run client waits after an ack")
    parser.add_argument("--between", type=float, nargs=2, default=(0.2, 1.0), metavar=("LO", "HI"),
                        help="seconds a server lives before its kill: uniform in [LO, HI]")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", type=Path, default=None, help="where the ledgers go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=Path("runs/service_load.json"))
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL ledger on a throwaway local server")
    parser.add_argument("--dsn", default=None, help="a PostgreSQL ledger on this server instead (base DSN)")
    args = parser.parse_args()
    started = time.monotonic()
    root = Path(args.folder or tempfile.mkdtemp(prefix="obliviate-service-load-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "throughput": [],
    }
    results["backend"] = "postgresql" if args.postgres or args.dsn else "sqlite"
    with throwaway_postgres(root) if args.postgres and not args.dsn else _given(args.dsn) as dsn:
        if not args.skip_throughput:
            for clients, max_group in ((args.clients, 512), (args.clients, 1), (1, 512)):
                r = measure_throughput(root, clients=clients, seconds=args.seconds, warmup=args.warmup,
                                       max_group=max_group, seed=args.seed, dsn=dsn)
                print(json.dumps(r), flush=True)
                results["throughput"].append(r)
        if args.kills:
            results["kills"] = measure_kills(root, kills=args.kills, clients=args.kill_clients, pause=args.pause,
                                             between=tuple(args.between), seed=args.seed, dsn=dsn)
            print(json.dumps(results["kills"]), flush=True)
    results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results["wall_seconds"] = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/service_load.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list | tuple) else v}"
        for k, v in vars(args).items()
        if k not in ("out", "folder", "skip_throughput", "postgres", "dsn")
    ) + (" --skip-throughput" if args.skip_throughput else "") + (" --postgres" if args.postgres else "")
    print(markdown(results, command))


if __name__ == "__main__":
    main()
