"""Fixtures for the service tests: a ledger with tokens of every scope, a tiny SISA target, an app factory."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("fastapi", reason="the service tests need the service extra: pip install 'obliviate[service]'")

import obliviate as ob  # noqa: E402
from obliviate.ledger import Ledger  # noqa: E402


@pytest.fixture(scope="session")
def service_data():
    """240 digits examples owned by 8 writers."""
    data = ob.data.digits(writers=8)
    return data.subset(data.ids[:240])


@pytest.fixture(scope="session")
def service_sisa_fitted(tmp_path_factory, service_data):
    """A 2-shard, 2-slice ensemble of a 16-unit MLP trained for 1 epoch (fitted once per session)."""
    from obliviate.exact import SISA

    recipe = ob.Recipe(model="mlp", epochs=1, lr=0.05, seed=0, model_options={"hidden": (16,)})
    folder = tmp_path_factory.mktemp("service-sisa") / "ensemble"
    SISA(recipe, shards=2, slices=2, assign="owner", seed=0).fit(service_data, folder)
    return folder


@pytest.fixture
def service_sisa(service_sisa_fitted, tmp_path):
    folder = tmp_path / "ensemble"
    shutil.copytree(service_sisa_fitted, folder)
    return folder


@pytest.fixture
def service_ledger(tmp_path):
    folder = tmp_path / "ledger"
    Ledger(folder, create=True).close()
    return folder


@pytest.fixture
def tokens(service_ledger):
    """Tokens by name: alice and bob (requesters), op (operator), aud (auditor), expired (every scope, expired
    yesterday), revoked (every scope, revoked)."""
    from obliviate.service import TokenStore

    with TokenStore(service_ledger) as store:
        out = {
            "alice": store.create("requester", name="alice")[0],
            "bob": store.create("requester", name="bob")[0],
            "op": store.create("operator")[0],
            "aud": store.create("auditor")[0],
            "expired": store.create(
                ["requester", "operator", "auditor"], days=1, now=datetime.now(UTC) - timedelta(days=2)
            )[0],
        }
        revoked, record = store.create(["requester", "operator", "auditor"])
        store.revoke(record.token_id)
        out["revoked"] = revoked
    return out


@pytest.fixture
def make_client(service_ledger):
    """``make_client(**config)``: a started TestClient on the ledger (closed at the end of the test)."""
    from fastapi.testclient import TestClient

    from obliviate.service import ServiceConfig, create_app

    clients = []

    def make(**options):
        client = TestClient(create_app(ServiceConfig(ledger=service_ledger, **options)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth():
    """``auth(token)``: the Authorization header for ``token``."""
    return bearer
