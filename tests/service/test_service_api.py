"""The HTTP API: tokens and scopes on every endpoint, requesters kept apart, idempotent filing, bad input,
apply -> certificate -> verify, rate limits, the audit trail, group commit."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

import obliviate as ob
from obliviate.ledger import Ledger

REQ, OP, AUD = "requester", "operator", "auditor"
ANY = {REQ, OP, AUD}
SOME_ID = "req-0123456789abcdef"
#: every endpoint: method, path, JSON body, the scopes that may call it
ENDPOINTS = [
    ("POST", "/requests", {"owners": ["writer-001"]}, {REQ}),
    ("GET", "/requests", None, ANY),
    ("GET", "/requests/{request_id}", None, ANY),
    ("POST", "/apply", None, {OP}),
    ("GET", "/status", None, {OP, AUD}),
    ("GET", "/batches", None, {OP, AUD}),
    ("GET", "/stats", None, {OP, AUD}),
    ("GET", "/certificates/{request_id}", None, ANY),
    ("POST", "/verify", {"request": {}}, {OP, AUD}),
    ("GET", "/audit", None, {OP, AUD}),
    ("GET", "/whoami", None, ANY),
    ("GET", "/report", None, ANY),
]
SCOPE_TOKEN = {REQ: "alice", OP: "op", AUD: "aud"}


def _ledger_rows(folder) -> tuple[dict, int, int]:
    with Ledger(folder) as book:
        return book.counts(), len(book.history()), len(book.certificates())


def _call(client, method, path, body, headers):
    path = path.replace("{request_id}", SOME_ID)
    return client.request(method, path, json=body, headers=headers)


def test_every_endpoint_is_in_the_table_below(make_client):
    """A new endpoint without an entry in ENDPOINTS fails here, so the token tests cover it."""
    client = make_client()
    routes = {
        (method, route.path)
        for route in client.app.routes
        if getattr(getattr(route, "endpoint", None), "required_scopes", None) is not None
        for method in route.methods
    }
    assert routes == {(m, p) for m, p, _, _ in ENDPOINTS}
    for method, path, _, scopes in ENDPOINTS:
        endpoint = next(r.endpoint for r in client.app.routes if getattr(r, "path", None) == path and method in r.methods)
        assert endpoint.required_scopes == scopes, path


@pytest.mark.parametrize("method,path,body,allowed", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_every_endpoint_refuses_missing_bad_expired_revoked_and_wrong_scope_tokens(
    make_client, tokens, auth, service_ledger, method, path, body, allowed
):
    client = make_client(token_cache_seconds=0)
    before = _ledger_rows(service_ledger)
    refusals = [
        ({}, 401),
        ({"Authorization": "Bearer obl_0123456789abcdef_not-the-secret"}, 401),
        ({"Authorization": "Bearer " + tokens["alice"][:-2] + "xx"}, 401),  # right id, wrong secret
        ({"Authorization": "Basic " + tokens["op"]}, 401),
        (auth(tokens["expired"]), 401),
        (auth(tokens["revoked"]), 401),
    ]
    refusals += [(auth(tokens[SCOPE_TOKEN[s]]), 403) for s in sorted(ANY - allowed)]
    for headers, status in refusals:
        response = _call(client, method, path, body, headers)
        assert response.status_code == status, (headers, response.text)
        assert response.json().keys() == {"detail"} and "\n" not in response.json()["detail"]
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    for scope in sorted(allowed):  # the allowed scopes get past the gateway (404: SOME_ID does not exist)
        response = _call(client, method, path, body, auth(tokens[SCOPE_TOKEN[scope]]))
        assert response.status_code not in (401, 403, 429), (scope, response.text)
    if method == "POST" and path == "/requests":
        assert _ledger_rows(service_ledger)[0]["received"] == 1  # only the allowed call filed
    else:
        assert _ledger_rows(service_ledger) == before


def test_a_requester_cannot_read_or_list_another_requesters_request(make_client, tokens, auth):
    client = make_client()
    filed = client.post("/requests", json={"owners": ["writer-002"], "client_key": "t-1"}, headers=auth(tokens["alice"]))
    assert filed.status_code == 201
    rid = filed.json()["request_id"]
    assert client.get(f"/requests/{rid}", headers=auth(tokens["alice"])).json()["owners"] == ["writer-002"]
    for path in (f"/requests/{rid}", f"/certificates/{rid}"):
        response = client.get(path, headers=auth(tokens["bob"]))
        assert response.status_code == 404 and "writer-002" not in response.text
    assert client.get("/requests", headers=auth(tokens["bob"])).json() == {
        "items": [], "total": 0, "offset": 0, "next_offset": None
    }
    # the same client key from bob is bob's own request, not alice's returned to him
    mine = client.post("/requests", json={"owners": ["writer-002"], "client_key": "t-1"}, headers=auth(tokens["bob"]))
    assert mine.status_code == 201 and mine.json()["request_id"] != rid
    listed = client.get("/requests", headers=auth(tokens["op"])).json()
    assert listed["total"] == 2 and {i["filed_by"] for i in listed["items"]} == {
        tokens["alice"].split("_")[1], tokens["bob"].split("_")[1]
    }


def test_filing_is_idempotent_by_client_key_and_a_reused_key_for_other_content_is_refused(
    make_client, tokens, auth, service_ledger
):
    client = make_client()
    h = auth(tokens["alice"])
    first = client.post("/requests", json={"ids": [3, 1, 2], "client_key": "ticket-9"}, headers=h)
    again = client.post("/requests", json={"ids": [1, 2, 3]}, headers=h | {"Idempotency-Key": "ticket-9"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["request_id"] == first.json()["request_id"] and again.json()["created"] is False
    assert first.json()["ids"] == [1, 2, 3] and first.json()["client_key"] == "ticket-9"
    other = client.post("/requests", json={"ids": [4], "client_key": "ticket-9"}, headers=h)
    assert other.status_code == 400 and "already used" in other.json()["detail"]
    clash = client.post("/requests", json={"ids": [4], "client_key": "a"}, headers=h | {"Idempotency-Key": "b"})
    assert clash.status_code == 400
    spaced = client.post("/requests", json={"ids": [5]}, headers=h | {"Idempotency-Key": "has space"})
    assert spaced.status_code == 422 and "Idempotency-Key" in spaced.json()["detail"]  # was a 500
    assert _ledger_rows(service_ledger)[0]["received"] == 1


BAD_BODIES = [
    (b'{"owners": ["a"]', 400, "malformed JSON"),
    (b'["a"]', 422, ""),
    (b'{"owners": ["a"], "owner": "b"}', 422, "unknown field 'owner'"),
    (b'{"ids": ["7"]}', 422, "ids.0"),
    (b'{"ids": [true]}', 422, "ids.0"),
    (b'{"ids": [1.5]}', 422, "ids.0"),
    (b'{"ids": 7}', 422, "ids"),
    (b'{"ids": [99999999999999999999999]}', 422, "ids.0"),
    (b'{"owners": "alice"}', 422, "owners"),
    (b'{"owners": ["a\\u001b[31m"]}', 400, "control character"),
    (b'{"owners": ["a"], "deadline": "2030-01-01T00:00:00"}', 422, "deadline"),
    (b'{"owners": ["a"], "deadline_days": -1}', 422, "deadline_days"),
    (b'{"owners": ["a"], "client_key": "../../etc/passwd x"}', 422, "client_key"),
    (b"{}", 422, "ids and/or owners"),
]


@pytest.mark.parametrize("body,status,reason", BAD_BODIES, ids=[b[0].decode()[:30] for b in BAD_BODIES])
def test_bad_filings_are_a_one_line_4xx_and_write_nothing(
    make_client, tokens, auth, service_ledger, body, status, reason
):
    client = make_client()
    response = client.post(
        "/requests", content=body, headers=auth(tokens["alice"]) | {"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert reason in detail and "\n" not in detail and len(detail) < 400
    assert _ledger_rows(service_ledger) == ({s: 0 for s in ob.ledger.STATUSES}, 0, 0)


def test_huge_bodies_traversal_in_names_and_non_json_certificates_are_refused(
    make_client, tokens, auth, service_ledger, tmp_path
):
    client = make_client(max_body=4096)
    h = auth(tokens["op"])
    big = {"owners": ["a"], "note": "x" * 5000}
    assert client.post("/requests", json=big, headers=auth(tokens["alice"])).status_code == 413
    chunks = (b'{"owners": ["a"], "note": "' + b"x" * 1000 for _ in range(6))  # streamed: no Content-Length
    streamed = client.post("/requests", content=chunks, headers=auth(tokens["alice"]))
    assert streamed.status_code == 413
    for path in ("/requests/..%2F..%2Fkeys%2Fed25519.pem", "/certificates/..%2Fledger.sqlite", "/requests/req-XYZ",
                 "/certificates/req-0123/../../keys"):
        response = client.get(path, headers=h)
        assert response.status_code in (404, 422) and "BEGIN" not in response.text, path
    for body, reason in ((b"not json", "not JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "not JSON")):
        response = client.post("/verify", content=body, headers=auth(tokens["aud"]))
        assert response.status_code == 400 and reason in response.json()["detail"]
    assert client.get("/requests?state=done", headers=h).status_code == 422
    assert client.get("/requests?limit=100000", headers=h).status_code == 422
    assert _ledger_rows(service_ledger) == ({s: 0 for s in ob.ledger.STATUSES}, 0, 0)
    assert not (service_ledger / "certificates").exists()


def test_apply_issues_certificates_the_requester_reads_and_the_auditor_verifies(
    make_client, tokens, auth, service_sisa, service_data, service_ledger
):
    client = make_client(sisa=service_sisa, data=service_data)
    filed = client.post("/requests", json={"owners": ["writer-003"], "note": "ticket 7"}, headers=auth(tokens["alice"]))
    unknown = client.post("/requests", json={"owners": ["nobody"]}, headers=auth(tokens["bob"]))
    rid = filed.json()["request_id"]
    assert client.get(f"/certificates/{rid}", headers=auth(tokens["alice"])).status_code == 404  # not applied yet
    applied = client.post("/apply", headers=auth(tokens["op"]))
    assert applied.status_code == 200, applied.text
    outcome = applied.json()
    assert outcome["applied"] == 1 and outcome["batches"][0]["applied"] == [rid] and outcome["batches"][0]["method"]
    assert outcome["failed"] == [{"request_id": unknown.json()["request_id"], "reason": outcome["failed"][0]["reason"]}]
    mine = client.get(f"/requests/{rid}", headers=auth(tokens["alice"])).json()
    assert mine["status"] == "applied" and mine["certificate"] is True
    assert [h["to"] for h in mine["history"]] == ["received", "scheduled", "applied"]
    cert = client.get(f"/certificates/{rid}", headers=auth(tokens["alice"])).json()
    owned = sorted(service_data.ids_of_owners(["writer-003"]).tolist())
    assert cert["removed_ids"] == owned and cert["request"]["request_id"] == rid
    verified = client.post("/verify", json=cert, headers=auth(tokens["aud"])).json()
    assert verified["ok"] and verified["marked_verified"] and verified["issued_by_ledger"], verified
    assert {c["name"] for c in verified["checks"]} >= {"signature", "model hash", "ids gone"}
    tampered = json.loads(json.dumps(cert))
    tampered["removed_ids"] = tampered["removed_ids"][1:]
    bad = client.post("/verify", json=tampered, headers=auth(tokens["aud"])).json()
    assert not bad["ok"] and not next(c for c in bad["checks"] if c["name"] == "signature")["ok"]
    status = client.get("/status", headers=auth(tokens["aud"])).json()
    assert status["counts"]["verified"] == 1 and status["counts"]["failed"] == 1 and status["signing_key"]
    (batch,) = client.get("/batches", headers=auth(tokens["op"])).json()
    assert batch["requests"] == [rid] and batch["applied"] == 1 and batch["method"] == cert["method"]
    stats = client.get("/stats", headers=auth(tokens["op"])).json()
    assert sum(stats["per_day"].values()) == 2 and [t["request_id"] for t in stats["apply_times"]] == [rid]
    assert client.post("/apply", headers=auth(tokens["op"])).json()["nothing_due"] is True


def test_rate_limit_is_per_token(make_client, tokens, auth):
    client = make_client(rate=0.01, burst=2)
    codes = [client.get("/whoami", headers=auth(tokens["alice"])).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.get("/whoami", headers=auth(tokens["alice"]))
    assert int(refused.headers["retry-after"]) >= 1 and "rate limit" in refused.json()["detail"]
    assert client.get("/whoami", headers=auth(tokens["bob"])).status_code == 200


def test_every_call_is_audited_with_its_token_and_status(make_client, tokens, auth, service_ledger):
    from obliviate.service import TokenStore

    client = make_client()
    filed = client.post("/requests", json={"owners": ["writer-001"]}, headers=auth(tokens["alice"]))
    client.get("/status", headers=auth(tokens["alice"]))
    client.get("/status")
    client.__exit__(None, None, None)  # stops the writer, which flushes the audit queue
    with TokenStore(service_ledger) as store:
        rows = [r for r in store.audit() if r["method"] != "CLI"]
    alice = tokens["alice"].split("_")[1]
    assert [(r["token_id"], r["path"], r["status"]) for r in reversed(rows)] == [
        (alice, "/requests", 201),
        (alice, "/status", 403),
        (None, "/status", 401),
    ]
    assert rows[-1]["detail"] == f"filed {filed.json()['request_id']}"


def test_anonymous_callers_cannot_flood_the_audit_table(make_client, service_ledger):
    """Calls without a token are audited up to a burst (then 5 per second per address), not once each."""
    from obliviate.service import TokenStore
    from obliviate.service.gateway import ANONYMOUS_AUDIT_BURST

    client = make_client()
    for _ in range(200):
        assert client.get("/status").status_code == 401
    client.__exit__(None, None, None)
    with TokenStore(service_ledger) as store:
        anonymous = [r for r in store.audit() if r["token_id"] is None and r["method"] != "CLI"]
    assert ANONYMOUS_AUDIT_BURST <= len(anonymous) < 200


def test_tokens_are_stored_hashed(tokens, service_ledger):
    raw = (service_ledger / "service.sqlite").read_bytes()
    wal = service_ledger / "service.sqlite-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    for token in tokens.values():
        assert token.split("_", 2)[2].encode() not in raw
    assert (service_ledger / "service.sqlite").stat().st_mode & 0o777 == 0o600


def test_made_up_token_ids_are_not_remembered(tokens, service_ledger):
    """A miss is not cached: anonymous callers inventing token ids cannot grow the server's memory."""
    from obliviate.service.tokens import TokenStore

    with TokenStore(service_ledger) as store:
        for i in range(50):
            assert store.authenticate(f"obl_{i:016x}_not-a-secret") is None
        assert store.authenticate(tokens["alice"]) is not None
        assert len(store._cache) == 1


def test_group_commit_files_queued_filings_in_one_transaction_and_isolates_a_bad_one(service_ledger):
    from obliviate.service.writer import GroupCommitter

    committer = GroupCommitter(service_ledger).start()
    blocker = sqlite3.connect(service_ledger / "ledger.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer's first transaction waits while the queue fills
    try:
        with Ledger(service_ledger) as book:
            pass
        futures = [committer.file(ob.ForgetRequest(ids=[i]), f"k{i}") for i in range(40)]
        futures.append(committer.file(ob.ForgetRequest(ids=[1000]), "k3"))  # k3 reused for other ids
        futures.append(committer.file(ob.ForgetRequest(ids=[5]), "k5"))  # the same filing twice in a group
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    results = [f.exception(timeout=60) or f.result() for f in futures]
    committer.stop()
    assert isinstance(results[40], ob.errors.InvalidInputError) and "already used" in str(results[40])
    assert results[41][0].request_id == results[5][0].request_id and results[41][1] is False
    assert all(created for _, created in results[:40])
    with Ledger(service_ledger) as book:
        assert book.counts()["received"] == 40 and len({r.key for r in book.requests()}) == 40
    assert committer.filed == 40 and committer.largest_group >= 20
    assert committer.groups <= 2 * 6 + 2  # bisection around the bad filing: about 2 log2(42), not 42


def test_the_openapi_schema_lists_every_endpoint_with_bearer_auth(make_client):
    client = make_client()
    schema = client.get("/openapi.json").json()
    paths = {(m.upper(), p) for p, item in schema["paths"].items() for m in item}
    assert paths == {(m, p) for m, p, _, _ in ENDPOINTS}
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())
    body = schema["components"]["schemas"]["FileRequest"]
    assert body["additionalProperties"] is False and "client_key" in body["properties"]


def test_token_cli_creates_lists_and_revokes(run_cli, tmp_path):
    import obliviate.cli.service  # noqa: F401  (registers token and serve)
    from obliviate.service import TokenStore

    folder = tmp_path / "ledger"
    made = run_cli("token", "create", "--scope", "operator,auditor", "--name", "ops", "--ledger", str(folder))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with TokenStore(folder) as store:
        record = store.authenticate(token)
        assert record is not None and record.scopes == ("auditor", "operator")
    listed = run_cli("token", "list", "--ledger", str(folder))
    assert record.token_id in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    assert run_cli("token", "revoke", record.token_id, "--ledger", str(folder)).returncode == 0
    with TokenStore(folder) as store:
        assert store.authenticate(token) is None
    bad = run_cli("token", "create", "--scope", "admin", "--ledger", str(folder))
    assert bad.returncode == 2 and "unknown scope 'admin'" in bad.stderr
    remote = run_cli("serve", "--host", "0.0.0.0", "--ledger", str(folder))
    assert remote.returncode == 2 and "not a loopback" in remote.stderr


def test_concurrent_filings_through_the_api_are_each_stored_once(make_client, tokens, auth, service_ledger):
    client = make_client(rate=0)
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def file(worker: int) -> None:
        for n in range(10):
            body = {"ids": [worker * 100 + n], "client_key": f"w{worker}-{n}"}
            for _ in range(2):  # a retry of an acknowledged filing is the same request
                response = client.post("/requests", json=body, headers=auth(tokens["alice"]))
                with lock:
                    seen.append((response.json()["request_id"], response.status_code))

    threads = [threading.Thread(target=file, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for _, code in seen).count(201) == 80 and len({rid for rid, _ in seen}) == 80
    assert _ledger_rows(service_ledger)[0]["received"] == 80


def test_the_queue_is_paged_by_deadline_and_filtered_by_state_and_overdue(make_client, tokens, auth):
    client = make_client()
    h = auth(tokens["alice"])
    for n, days in enumerate([9, 0, 5, 7, 3]):
        assert client.post("/requests", json={"ids": [n], "deadline_days": days}, headers=h).status_code == 201
    first = client.get("/requests?limit=2", headers=h).json()
    second = client.get("/requests?limit=2&offset=2", headers=h).json()
    last = client.get("/requests?limit=2&offset=4", headers=h).json()
    assert (first["total"], first["next_offset"], second["next_offset"], last["next_offset"]) == (5, 2, 4, None)
    order = [r["ids"][0] for page in (first, second, last) for r in page["items"]]
    assert order == [1, 4, 2, 3, 0]  # by deadline
    overdue = client.get("/requests?overdue=true", headers=h).json()
    assert [r["ids"] for r in overdue["items"]] == [[1]] and overdue["items"][0]["overdue"] is True
    assert client.get("/requests?state=applied", headers=h).json()["total"] == 0
    assert client.get("/requests?state=received", headers=h).json()["total"] == 5


def test_a_server_on_a_missing_ledger_is_refused_before_it_starts(tmp_path):
    from obliviate.ledger import LedgerNotFoundError
    from obliviate.service import ServiceConfig, create_app

    with pytest.raises(LedgerNotFoundError, match="no ledger at"):
        create_app(ServiceConfig(ledger=tmp_path / "nowhere"))


def test_the_dashboard_is_served_locally_without_a_token_and_loads_nothing_from_elsewhere(make_client):
    import re

    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/static/") for link in links), links
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200
        assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), link  # only the SVG namespace
    assert client.get("/docs").status_code == 401  # no Swagger page (its scripts come from a CDN)
    assert client.get("/static/../ledger.sqlite").status_code == 401  # the client normalises it to /ledger.sqlite
    leak = client.get("/static/..%2F..%2F..%2Fservice%2Ftokens.py")
    assert leak.status_code == 404 and "TokenStore" not in leak.text
