"""A supervisor's first minute in a real browser."""

from __future__ import annotations

import re

import pytest

from journeys.services import journey_start

pytestmark = [pytest.mark.browser]


def test_supervisor_logs_in_finds_a_journey_and_reads_its_timeline(login_page, agent):
    journey = journey_start(
        definition="lost_card", customer_ref="CUST-00006", message="My card is gone", request={"reason": "lost"}
    )
    page = login_page("supervisor")
    page.goto("/journeys/")
    page.get_by_role("link", name=f"J-{journey.pk}").click()
    page.wait_for_url(re.compile(rf"/journeys/{journey.pk}/$"))
    assert page.get_by_role("heading", name=re.compile("Lost or stolen card")).is_visible()
    timeline = page.locator("#timeline")
    assert "My card is gone" in timeline.inner_text()
    # The step track starts at the definition's first step (a worker may already be further on).
    assert page.locator(".step").first.inner_text().endswith("Verify identity")
    assert page.locator(".step").count() == 5
    # The page works under the console's CSP: no blocked inline script or style.
    assert page.evaluate("() => typeof window.htmx") == "object"
