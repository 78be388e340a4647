"""Compliance and break glass in a real browser (CSP on, htmx, CSRF header, real worker)."""

from __future__ import annotations

import pytest

from journeys.models import Journey
from journeys.services import journey_start
from review.models import AuditRecord

pytestmark = [pytest.mark.browser]


@pytest.mark.worker
def test_compliance_verifies_the_trail_and_watches_the_progress(celery_worker, demo, login_page):
    journey = journey_start(definition="fee_refund", customer_ref="CUST-00001")
    page = login_page("compliance")
    page.goto("/audit/")
    assert page.get_by_role("link", name=f"J-{journey.pk}").first.is_visible()
    page.get_by_role("link", name="Verification").click()
    page.get_by_role("button", name="Verify the trail now").click()
    page.locator("#progress .badge", has_text="Passed").wait_for(timeout=20_000)
    assert "Audit trail intact" in page.locator("#progress").inner_text()


def test_a_supervisor_breaks_glass_for_one_field_with_a_reason(demo, login_page):
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey.context["facts"] = {
        "card": "4000111122223333",
        "address": "12 Station Road, Springfield SP1 2CD",
    }
    # With a person, so a worker left running by another test leaves the facts alone.
    Journey.objects.filter(pk=journey.pk).update(context=journey.context, status=Journey.Status.HUMAN)
    page = login_page("supervisor")
    page.goto(f"/journeys/{journey.pk}/")
    card = page.locator("#sv-facts-card")
    assert "4000111122223333" not in card.inner_text()
    card.locator("summary").click()
    card.get_by_label("Reason for unmasking").fill("Customer asked to confirm the card")
    card.get_by_role("button", name="Break glass").click()
    page.locator("#sv-facts-card .unmasked").wait_for()
    assert "4000111122223333" in page.locator("#sv-facts-card").inner_text()
    assert "12 Station Road" not in page.content()  # only the one field
    assert AuditRecord.objects.filter(kind="break_glass", actor_label="supervisor").count() == 1
