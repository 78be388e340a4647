"""In a real browser: the person in control proposes an action with one typed field per
parameter; the customer's own resources are choices; every error shows at once on the journey."""

from __future__ import annotations

import pytest
from django.db import transaction
from playwright.sync_api import expect

from journeys.control import journey_take_over
from journeys.models import ProposedAction
from journeys.services import journey_start

from ..review.helpers import account_of

pytestmark = [pytest.mark.browser]


def test_the_propose_form_has_typed_fields_choices_and_every_error_at_once(transactional_db, supervisor, login_page):
    # Taken over in the transaction that starts it: the agent's first turn, queued for after
    # the commit, finds the journey taken over and drops, whether or not a worker runs by then.
    with transaction.atomic():
        journey = journey_start(definition="card_dispute", customer_ref="CUST-00002", request={})
        journey_take_over(journey_id=journey.pk, user=supervisor)
    own_account = account_of("CUST-00002")

    page = login_page("supervisor")
    page.goto(f"/journeys/{journey.pk}/")
    page.get_by_text("Propose an action").click()
    action = page.locator("#propose-form select[name=action]")
    # The action types of the journey's current step come first.
    expect(action.locator("optgroup").first).to_have_attribute("label", f"This step ({journey.current_step_title})")

    action.select_option("issue_refund")
    refund = page.locator('fieldset[data-action="issue_refund"]')
    expect(refund).to_be_visible()
    expect(page.locator('fieldset[data-action="block_card"]')).to_be_hidden()
    expect(refund.locator("input[name='issue_refund-amount']")).to_have_attribute("type", "number")
    account = refund.locator("select[name='issue_refund-account']")
    expect(account).to_have_value(own_account)  # the customer's own account, the only choice

    # Nothing filled in: every error at once, and the page is still the journey's.
    page.get_by_role("button", name="Propose").click()
    expect(page.locator("#propose-errors")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("for CUST-00002")
    expect(page.get_by_text("Amount is required.")).to_be_visible()
    expect(page.get_by_text("Reason is required.")).to_be_visible()
    expect(page.get_by_text("This field is required.")).to_be_visible()  # the explanation
    expect(page.locator('fieldset[data-action="issue_refund"]')).to_be_visible()  # the choice is kept
    assert not ProposedAction.objects.filter(journey=journey).exists()

    refund = page.locator('fieldset[data-action="issue_refund"]')
    refund.locator("input[name='issue_refund-amount']").fill("20.00")
    refund.locator("input[name='issue_refund-reason']").fill("goodwill")
    page.locator("#propose-form [name=explanation]").fill("Fee charged twice.")
    page.get_by_role("button", name="Propose").click()
    expect(page.locator("ul.messages")).to_contain_text("Issue refund")
    proposal = ProposedAction.objects.get(journey=journey)
    assert proposal.params["amount"] == "20.00" and proposal.params["account"] == own_account
