"""Fixtures for the ledger tests: a tiny owned dataset, a tiny SISA ensemble, a saved model, a ledger."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import obliviate as ob
from obliviate.exact import SISA
from obliviate.ledger import Ledger


@pytest.fixture(scope="session")
def owned_data():
    """360 digits examples owned by 12 writers (ids and owners stable)."""
    data = ob.data.digits(writers=12)
    return data.subset(data.ids[:360])


@pytest.fixture(scope="session")
def micro_recipe():
    """A one-hidden-layer MLP of 16 units, 2 epochs: a SISA shard trains in milliseconds."""
    return ob.Recipe(model="mlp", epochs=2, lr=0.05, seed=0, model_options={"hidden": (16,)})


@pytest.fixture(scope="session")
def fitted_sisa(tmp_path_factory, owned_data, micro_recipe):
    """A 3-shard, 2-slice ensemble fitted once; tests get a private copy through ``sisa_folder``."""
    folder = tmp_path_factory.mktemp("sisa") / "ensemble"
    SISA(micro_recipe, shards=3, slices=2, assign="owner", seed=0).fit(owned_data, folder)
    return folder


@pytest.fixture
def sisa_folder(fitted_sisa, tmp_path):
    folder = tmp_path / "ensemble"
    shutil.copytree(fitted_sisa, folder)
    return folder


@pytest.fixture
def model_file(tmp_path, owned_data, micro_recipe):
    """A model trained on ``owned_data`` and saved with its data fingerprint, as `obliviate train` does."""
    path = tmp_path / "model.safetensors"
    ob.save_model(
        ob.train(micro_recipe, owned_data), path, metadata={"data": "owned", "data_fingerprint": owned_data.fingerprint}
    )
    return path


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger", create=True) as book:
        yield book


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Run ``obliviate ARGS`` (ledger in ``<tmp>/ledger``) with typer's runner: (exit code, stdout, stderr).

    A typed error becomes exit code 2 and its message on stderr, as ``obliviate.cli.main`` prints it.
    """
    from typer.testing import CliRunner

    from obliviate.cli import app
    from obliviate.errors import ObliviateError

    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped, so the assertions see whole cells
    monkeypatch.setenv("OBLIVIATE_LEDGER", str(tmp_path / "ledger"))

    def invoke(*args: str) -> subprocess.CompletedProcess:
        result = CliRunner().invoke(app, [str(a) for a in args])
        if isinstance(result.exception, ObliviateError):
            return subprocess.CompletedProcess(args, 2, result.stdout, str(result.exception))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def crash_folder(tmp_path, fitted_sisa):
    """A fresh folder holding a copy of the fitted ensemble, on /dev/shm when there is one."""
    shm = Path("/dev/shm")
    root = (
        Path(tempfile.mkdtemp(prefix="obliviate-kill9-", dir=shm))
        if shm.is_dir() and os.access(shm, os.W_OK)
        else tmp_path
    )
    shutil.copytree(fitted_sisa, root / "ensemble")
    yield root
    if root != tmp_path:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- PostgreSQL
PG_BINARIES = ("initdb", "pg_ctl", "postgres")


def _pg_user() -> str | None:
    """The user that runs the throwaway server: ourselves, or (as root, whom initdb refuses) ``postgres``/``nobody``."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL's initdb as")


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server on loopback for the session: its base DSN (user ``obliviate``, trust auth).

    initdb into a fresh temporary folder, ``pg_ctl start`` on 127.0.0.1 and a free port (socket in the same
    folder), stopped and removed at the end. Skipped, with the reason, only where the binaries are missing."""
    missing = [b for b in PG_BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(
            f"PostgreSQL binaries not found ({', '.join(missing)}): install Debian's `postgresql` package (and put "
            "its bin/ on PATH) to run the PostgreSQL ledger tests"
        )
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'obliviate[postgres]'")
    import socket

    user = _pg_user()
    root = Path(tempfile.mkdtemp(prefix="obliviate-pg-"))
    if user is not None:
        shutil.chown(root, user=user)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        _as_user(user, ["initdb", "-D", str(data), "-A", "trust", "-U", "obliviate", "-E", "UTF8", "--locale=C"]),
        check=True,
        capture_output=True,
        env=env,
    )
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(
        _as_user(user, ["pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options, "start"]),
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield f"postgresql://obliviate@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_user(user, ["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True, env=env
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_server):
    """A DSN whose current schema is a fresh, empty one (a database of its own, as far as the ledger can tell)."""
    import uuid

    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{pg_server}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_backend(request, tmp_path):
    """Where a ledger of each backend goes: ``(location, files)`` for ``Ledger(location, files=files, create=...)``."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger"), None
    return request.getfixturevalue("pg_dsn"), tmp_path / "ledger-files"


@pytest.fixture
def any_ledger(ledger_backend):
    """A new, empty ledger on each backend (the store tests run against both)."""
    location, files = ledger_backend
    with Ledger(location, files=files, create=True) as book:
        yield book
