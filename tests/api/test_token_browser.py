"""An admin's API token flow in a real browser, and the API docs page under the CSP."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.browser]


def test_admin_issues_a_token_follows_its_calls_and_revokes_it(login_page, live_server, demo):
    page = login_page("admin")
    page.get_by_role("link", name="API tokens").click()
    page.fill("input[name=name]", "Partner bot")
    page.select_option("select[name=user]", label="agent-external")
    page.get_by_role("button", name="Create token").click()
    raw = page.locator("#new-token").inner_text().strip()
    assert raw.startswith("hnd_")

    headers = {"Authorization": f"Bearer {raw}"}
    started = httpx.post(
        f"{live_server.url}/api/v1/journeys",
        json={"definition": "fee_refund", "customer_ref": "CUST-00004"},
        headers=headers,
    )
    assert started.status_code == 201

    page.goto("/api-tokens/")
    page.get_by_role("link", name="Calls in the audit trail").click()
    assert "POST /api/v1/journeys → 201" in page.locator("main").inner_text()

    page.goto("/api-tokens/")
    page.get_by_role("button", name="Revoke").click()
    assert "revoked" in page.locator(".messages").inner_text()
    assert httpx.get(f"{live_server.url}/api/v1/journeys/1", headers=headers).status_code == 401


def test_api_docs_page_renders_under_the_csp(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto("/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    assert "Handoff API" in page.locator("body").inner_text()
    assert not [text for text in blocked if "script" in text.lower()], blocked
    context.close()
