"""The demo supervisor works the approval queue in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from journeys.models import Journey, ProposedAction

from ..conftest import wait_for
from .helpers import disputable_charges, start_dispute

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_supervisor_approves_one_action_and_rejects_another_in_the_queue(celery_worker, login_page, agent):
    first, second, later = disputable_charges(3)
    journeys = [start_dispute(first), start_dispute(second)]
    for journey in journeys:
        wait_for(
            lambda j=journey: Journey.objects.get(pk=j.pk).status == Journey.Status.WAITING_APPROVAL,
            message=f"J-{journey.pk} never asked for approval",
        )
    to_approve, to_reject = (Journey.objects.get(pk=j.pk).proposals.pending().get() for j in journeys)

    page = login_page("supervisor")
    page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_role("heading", name="Approval queue")).to_be_visible()

    row = page.locator(f"#proposal-{to_approve.pk}")
    expect(row).to_contain_text(f"J-{to_approve.journey_id}")
    expect(row).to_contain_text("need one approver")
    row.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Approved Issue refund")
    expect(page.locator(f"#proposal-{to_approve.pk}")).to_have_count(0)

    # Half-way through typing a rejection, a new item arrives: it appears without reloading the
    # page (htmx polling) and the typed reason survives the refresh.
    row = page.locator(f"#proposal-{to_reject.pk}")
    row.get_by_placeholder("Reason (required to reject)").fill("The merchant already refunded this charge")
    newcomer = start_dispute(later)
    wait_for(
        lambda: Journey.objects.get(pk=newcomer.pk).status == Journey.Status.WAITING_APPROVAL,
        message=f"J-{newcomer.pk} never asked for approval",
    )
    expect(page.locator("#queue-rows")).to_contain_text(f"J-{newcomer.pk}", timeout=15_000)
    expect(row.get_by_placeholder("Reason (required to reject)")).to_have_value(
        "The merchant already refunded this charge"
    )
    row.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Rejected Issue refund")
    expect(page.locator(f"#proposal-{to_reject.pk}")).to_have_count(0)

    approved = ProposedAction.objects.get(pk=to_approve.pk)
    rejected = ProposedAction.objects.get(pk=to_reject.pk)
    assert approved.decided_by.username == "supervisor"
    assert approved.status in (ProposedAction.Status.APPROVED, ProposedAction.Status.EXECUTED)
    assert rejected.status == ProposedAction.Status.REJECTED
    assert rejected.decision_reason == "The merchant already refunded this charge"
    # The approved credit is executed by the journey's next turn.
    wait_for(
        lambda: ProposedAction.objects.get(pk=to_approve.pk).status == ProposedAction.Status.EXECUTED,
        message="the approved credit was never executed",
    )
