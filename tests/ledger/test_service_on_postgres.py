"""The service on a PostgreSQL ledger: filing over HTTP, idempotent by the client key, applied and certified."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service needs its extra: pip install 'obliviate[service]'")


def test_the_service_files_applies_and_certifies_on_a_postgres_ledger(pg_dsn, tmp_path, sisa_folder, owned_data):
    from fastapi.testclient import TestClient

    from obliviate.ledger import APPLIED, Ledger
    from obliviate.service import ServiceConfig, TokenStore, create_app

    files = tmp_path / "files"
    Ledger(pg_dsn, files=files, create=True).close()
    with TokenStore(files) as store:  # the service's tokens live in the files folder
        requester, _ = store.create("requester")
        operator, _ = store.create("operator")
    config = ServiceConfig(ledger=pg_dsn, ledger_files=files, sisa=sisa_folder, data=owned_data, rate=0)
    with TestClient(create_app(config)) as client:
        body = {"ids": [int(owned_data.ids[5])], "client_key": "ticket-1"}
        first = client.post("/requests", json=body, headers={"Authorization": f"Bearer {requester}"})
        again = client.post("/requests", json=body, headers={"Authorization": f"Bearer {requester}"})
        assert first.status_code in (200, 201), first.text
        assert again.json()["request_id"] == first.json()["request_id"]
        done = client.post("/apply", headers={"Authorization": f"Bearer {operator}"})
        assert done.status_code == 200, done.text
        status = client.get("/status", headers={"Authorization": f"Bearer {operator}"}).json()
        assert status["ledger"].startswith("postgresql://") and status["counts"][APPLIED] == 1
    with Ledger(pg_dsn, files=files) as book:
        assert [r.status for r in book.requests()] == [APPLIED]
        assert book.certificate(first.json()["request_id"]) is not None
