"""Every main page of every role in a real browser: accessible (axe-core, no critical or serious
violations), no duplicate element ids, and usable on a 390 px wide phone without sideways scrolling.

axe-core is vendored under ``tests/vendor/axe-core`` so this runs from a fresh clone, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from console.navigation import items_for
from journeys.models import ProposedAction
from journeys.services import journey_start
from review.models import ExceptionCase, ReviewSample

from ..review.case_helpers import hand_over
from ..review.helpers import propose, refund

pytestmark = [pytest.mark.browser]

AXE = Path(__file__).resolve().parent.parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "critical" || v.impact === "serious")
    .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
}"""
DUPLICATE_IDS = """() => {
  const ids = [...document.querySelectorAll("[id]")].map(e => e.id);
  return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
}"""
SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  return [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + String(e.className));
}"""


@pytest.fixture
def busy_desk(agent) -> dict[str, Any]:
    """A little of everything, so each page shows rows rather than its empty state."""
    dispute = journey_start(
        definition="card_dispute", customer_ref="CUST-00001", message="I don't know this charge", request={}
    )
    propose(dispute, "issue_refund", {"account": "ACC-000001", "amount": "120.00", "reason": "provisional credit"})
    fee = journey_start(definition="fee_refund", customer_ref="CUST-00002", message="Why this fee?")
    refund(fee, "80.00", agent=agent)
    failing = journey_start(definition="card_dispute", customer_ref="CUST-00004")
    with transaction.atomic():
        hand_over(failing, "agent_error", "AgentError: the agent gave up.")
    lost = journey_start(
        definition="lost_card",
        customer_ref="CUST-00006",
        message="My card is gone",
        request={"reason": "lost", "lost_at": "2026-03-01T22:30:00+00:00"},
    )
    message = propose(lost, "send_message", {"customer": lost.customer_ref, "text": "Hi"}, agent=agent)
    ReviewSample.objects.get_or_create(proposal=message)
    assert ProposedAction.objects.filter(status=ProposedAction.Status.PENDING).count() == 2
    case = ExceptionCase.objects.get(journey=failing)
    return {"dispute": dispute, "fee": fee, "case": case}


def pages_for(username: str, data: dict[str, Any]) -> list[str]:
    """The role's menu, plus the detail pages it works in."""
    user = get_user_model().objects.get(username=username)
    urls = [reverse(item.url_name) for item in items_for(user) if not item.url_name.startswith("admin:")]
    urls.append(reverse("operator_settings"))
    urls.append("/no-such-page/")  # the 404 page keeps the layout
    if username in {"supervisor", "compliance", "admin"}:
        urls += [
            reverse("journey_detail", args=[data["dispute"].pk]),
            reverse("cases:group", args=[data["case"].group_id]),
            reverse("cases:case", args=[data["case"].pk]),
        ]
    if username in {"compliance", "admin"}:
        urls += [reverse("audit:journey", args=[data["dispute"].pk]), reverse("audit:verify")]
    if username == "admin":
        urls += [reverse("review_scope_create"), reverse("team_detail", args=[1])]
    if username == "supervisor2":
        pending = ProposedAction.objects.get(journey=data["fee"], status=ProposedAction.Status.PENDING)
        urls.append(reverse("review_edit", args=[pending.pk]))
    return urls


def _open(browser, live_server, viewport: dict[str, int], username: str | None):
    # axe is injected as a script tag; the console's CSP (rightly) refuses unknown scripts.
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    if username:
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "demo")
        page.click("button[type=submit]")
        page.wait_for_load_state()
    return context, page


@pytest.mark.parametrize("username", ["supervisor", "supervisor2", "compliance", "admin", "lead"])
def test_every_main_page_is_accessible_unique_and_fits_a_phone(browser, live_server, busy_desk, username):
    urls = pages_for(username, busy_desk)
    problems: list[str] = []
    for viewport in (DESKTOP, PHONE):
        context, page = _open(browser, live_server, viewport, username)
        try:
            for url in urls:
                page.goto(url)
                page.wait_for_load_state()
                where = f"{url} at {viewport['width']} px"
                if page.locator("nav.mainnav").count() != 1:
                    problems.append(f"{where}: no main navigation")
                for dup in page.evaluate(DUPLICATE_IDS):
                    problems.append(f"{where}: duplicate id {dup!r}")
                if viewport is PHONE:
                    for element in page.evaluate(SIDEWAYS):
                        problems.append(f"{where}: scrolls sideways ({element} sticks out)")
                page.add_script_tag(path=str(AXE))
                for violation in page.evaluate(AXE_RUN):
                    problems.append(f"{where}: {violation}")
        finally:
            context.close()
    assert not problems, "\n".join(problems)


def test_the_login_page_is_accessible_and_fits_a_phone(browser, live_server, demo):
    context, page = _open(browser, live_server, PHONE, None)
    try:
        page.goto("/login/")
        assert page.evaluate(SIDEWAYS) == []
        page.add_script_tag(path=str(AXE))
        assert page.evaluate(AXE_RUN) == []
    finally:
        context.close()
