"""In a real browser: take over, message the customer, hand back; the agent finishes."""

from __future__ import annotations

import pytest
from django.db import transaction
from playwright.sync_api import expect

from journeys.models import Event, Journey
from journeys.services import journey_hand_to_person, journey_start, lock_journey

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_supervisor_takes_over_messages_the_customer_and_hands_back_to_the_agent(celery_worker, agent, login_page):
    with transaction.atomic():
        journey = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"})
        journey_hand_to_person(
            lock_journey(journey.pk),
            reason="The customer asked for a person.",
            exception_kind="customer_request",
        )

    page = login_page("supervisor")
    # The supervisor lands on the live board, where the journey waits on a person.
    expect(page.locator("h1")).to_have_text("Live board")
    row = page.locator(f'tr[data-journey="{journey.pk}"]')
    expect(row).to_have_class("needs-person")
    row.get_by_role("link", name=f"J-{journey.pk}").click()
    # htmx turns the take-over form into a confirmed POST once the page has loaded; clicked
    # sooner (a busy machine), the browser follows the form's no-script fallback page instead.
    page.wait_for_url(f"**/journeys/{journey.pk}/", wait_until="load")

    page.once("dialog", lambda dialog: dialog.accept())  # the short confirmation
    page.locator("#take-over").click()
    expect(page.get_by_text("You are in control.")).to_be_visible()

    page.locator("#message-form textarea").fill("Hello, I'm Sam. I'm blocking your card right now.")
    page.get_by_role("button", name="Send to the customer").click()
    expect(page.locator("#timeline")).to_contain_text("Hello, I'm Sam. I'm blocking your card right now.")

    page.locator("#hand-back-form textarea").fill("Customer confirmed the card is lost; carry on.")
    page.get_by_role("button", name="Hand back to the agent").click()
    expect(page.get_by_text("is back with the agent")).to_be_visible()

    # The page follows the agent live until the journey is done.
    expect(page.locator("#journey-facts")).to_contain_text("Completed", timeout=30_000)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.COMPLETED
    message = journey.events.get(kind=Event.Kind.MESSAGE_OUT, actor_user__username="supervisor")
    assert message.summary.startswith("Hello, I'm Sam.")
    assert "supervisor: Customer confirmed the card is lost; carry on." in journey.context["guidance"]
