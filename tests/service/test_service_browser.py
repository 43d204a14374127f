"""The dashboard in a real browser: Debian's chromium driven by Playwright, against uvicorn on a loopback port.

Screenshots go to ``test-artifacts/service/`` (gitignored) at the repository root. Skipped, with the reason, only
where Playwright or a chromium binary cannot be found."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install playwright")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "service"


def _chromium() -> str | None:
    for candidate in (os.environ.get("OBLIVIATE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def server(service_ledger, service_sisa, service_data, tmp_path):
    """uvicorn serving the app (SISA target, a benchmark report) on a free loopback port, in a thread."""
    import uvicorn

    from obliviate.service import ServiceConfig, create_app

    report = tmp_path / "report.html"
    report.write_text("<html><body><h1>digits leaderboard</h1><table><tr><td>sisa</td></tr></table></body></html>")
    app = create_app(ServiceConfig(ledger=service_ledger, sisa=service_sisa, data=service_data, report=report))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture
def browser():
    path = _chromium()
    if path is None:
        pytest.skip("no chromium found (apt-get install chromium, or set OBLIVIATE_CHROMIUM to its path)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("login-button").click()
    sync_api.expect(page.get_by_test_id("scopes")).to_be_visible()


def test_file_see_apply_and_open_the_certificate_in_chromium(server, browser, tokens, service_data):
    expect = sync_api.expect
    errors: list[str] = []
    requester = browser.new_page(viewport={"width": 1280, "height": 900})
    requester.on("pageerror", lambda e: errors.append(str(e)))
    requester.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requester.goto(server)
    requester.get_by_test_id("token-input").fill("obl_0123456789abcdef_wrong")
    requester.get_by_test_id("login-button").click()
    expect(requester.locator("#login-error")).to_contain_text("unknown, expired or revoked")
    errors.clear()  # the refused sign-in logs its 401 on the console
    _sign_in(requester, server, tokens["alice"])
    expect(requester.get_by_test_id("scopes")).to_have_text("requester")
    expect(requester.get_by_test_id("apply-button")).to_be_hidden()  # not an operator

    requester.get_by_role("button", name="File a request").click()
    requester.get_by_test_id("file-owners").fill("writer-004")
    requester.get_by_test_id("file-note").fill("ticket <b>42</b>")
    requester.get_by_test_id("file-submit").click()
    expect(requester.get_by_test_id("message")).to_contain_text("Filed req-")
    rid = requester.get_by_test_id("message").inner_text().split("Filed ")[1].strip()
    row = requester.locator(f'[data-request="{rid}"]')
    expect(row).to_contain_text("received")
    expect(row).to_contain_text("ticket <b>42</b>")  # shown as text, not markup
    _shot(requester, "1-requester-queue")

    operator = browser.new_page(viewport={"width": 1280, "height": 900})
    operator.on("pageerror", lambda e: errors.append(str(e)))
    _sign_in(operator, server, tokens["op"])
    late = operator.context.request.post(  # an overdue request: deadline 0 days, filed by bob through the API
        server + "/requests", data={"ids": [int(service_data.ids[0])], "deadline_days": 0},
        headers={"Authorization": f"Bearer {tokens['bob']}"},
    )
    assert late.status == 201
    operator.reload()
    expect(operator.get_by_test_id("scopes")).to_have_text("operator")
    late_row = operator.locator(f'[data-request="{late.json()["request_id"]}"]')
    expect(late_row).to_contain_text("OVERDUE")
    colour = late_row.locator("td").first.evaluate("td => getComputedStyle(td).color")
    assert colour == "rgb(192, 38, 45)"  # red
    operator.get_by_test_id("filter-overdue").check()
    expect(operator.get_by_test_id("queue-row")).to_have_count(1)
    operator.get_by_test_id("filter-overdue").uncheck()
    expect(operator.get_by_test_id("queue-row")).to_have_count(2)
    _shot(operator, "2-operator-queue-overdue")

    operator.get_by_test_id("apply-button").click()
    expect(operator.get_by_test_id("message")).to_contain_text("Applied 2 request(s) in 1 batch(es).", timeout=60_000)
    expect(operator.get_by_test_id("counts")).to_have_text("received 0scheduled 0applied 2verified 0failed 0")
    operator.get_by_test_id("filter-state").select_option("applied")
    expect(operator.get_by_test_id("queue-row")).to_have_count(2)
    operator.locator(f'[data-request="{rid}"]').click()
    expect(operator.get_by_test_id("lifecycle")).to_contain_text("received")
    expect(operator.get_by_test_id("lifecycle").locator("li")).to_have_count(3)
    operator.get_by_test_id("open-certificate").click()
    certificate = operator.get_by_test_id("certificate")
    expect(certificate).to_contain_text("sisa (exact)")
    expect(certificate).to_contain_text(str(len(service_data.ids_of_owners(["writer-004"]))))
    operator.get_by_test_id("verify-certificate").click()
    expect(operator.get_by_test_id("verdict")).to_contain_text("VERIFIED (request marked verified)")
    _shot(operator, "3-operator-certificate-verified")

    operator.get_by_role("button", name="Batches").click()
    expect(operator.get_by_test_id("batch-row")).to_have_count(1)
    operator.get_by_role("button", name="Charts").click()
    expect(operator.get_by_test_id("chart-per-day").locator("rect")).to_have_count(1)
    expect(operator.get_by_test_id("chart-apply").locator("rect.bar")).to_have_count(2)
    expect(operator.get_by_test_id("chart-apply").locator("rect.late")).to_have_count(1)
    _shot(operator, "4-charts")
    operator.get_by_role("button", name="Benchmark report").click()
    expect(operator.frame_locator("iframe.report").locator("h1")).to_have_text("digits leaderboard")
    _shot(operator, "5-report")

    requester.reload()  # the requester sees its request verified and opens its certificate
    requester.locator(f'[data-request="{rid}"]').click()
    expect(requester.get_by_test_id("detail")).to_contain_text("verified")
    requester.get_by_test_id("open-certificate").click()
    expect(requester.get_by_test_id("download-certificate")).to_be_visible()
    expect(requester.get_by_test_id("verify-certificate")).to_have_count(0)  # verifying is for auditors
    expect(requester.get_by_test_id("queue-row")).to_have_count(1)  # bob's request is not listed
    _shot(requester, "6-requester-certificate")
    assert errors == []
