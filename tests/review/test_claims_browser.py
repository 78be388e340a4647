"""Two approvers, each in their own browser, on one approval queue: one claims an item, the other
sees it claimed (without reloading) and can neither claim nor approve it, even from a page
opened before the claim; a release gives it back; a lapsed claim frees it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from journeys.models import Event, ProposedAction

from .helpers import refund, start

pytestmark = [pytest.mark.browser]


def test_two_approvers_claim_release_and_a_lapsed_claim_in_two_browsers(transactional_db, agent, login_page):
    pending = refund(start("card_dispute", customer="CUST-00003"), "120.00", agent=agent)
    row_id = f"#proposal-{pending.pk}"

    sam = login_page("supervisor")
    chris = login_page("cards2")
    # A page Chris opened before the claim and that never refreshes (its polls are cut off).
    stale = chris.context.new_page()
    stale.route(lambda url: "since=" in url, lambda route: route.abort())
    for page in (sam, chris, stale):
        page.goto("/review/")
        expect(page.locator(row_id).get_by_role("button", name="Claim")).to_be_visible()
        expect(page.locator(row_id).get_by_role("button", name="Approve", exact=True)).to_be_visible()

    # Sam claims it: his row says so, Chris's open queue shows who reviews it, by itself.
    sam.locator(row_id).get_by_role("button", name="Claim").click()
    expect(sam.get_by_text(f"You are reviewing Issue refund on J-{pending.journey_id}.")).to_be_visible()
    expect(sam.locator(row_id)).to_contain_text("You are reviewing this")
    theirs = chris.locator(row_id)
    expect(theirs).to_contain_text("Being reviewed by supervisor", timeout=15_000)  # the queue polls
    expect(theirs.get_by_role("button")).to_have_count(0)

    # From the stale page Chris can neither approve nor claim it: the server refuses, says who.
    stale.locator(row_id).get_by_role("button", name="Approve", exact=True).click()
    expect(stale.get_by_text("supervisor is reviewing Issue refund")).to_be_visible()
    assert ProposedAction.objects.get(pk=pending.pk).status == ProposedAction.Status.PENDING
    stale.route(lambda url: "since=" in url, lambda route: route.abort())
    stale.goto("/review/")
    expect(stale.locator(row_id)).to_contain_text("Being reviewed by supervisor")

    # Sam releases it; Chris's queue offers it again, and Chris claims it.
    sam.locator(row_id).get_by_role("button", name="Release").click()
    expect(sam.get_by_text(f"Issue refund on J-{pending.journey_id} is back in the queue.")).to_be_visible()
    expect(theirs.get_by_role("button", name="Claim")).to_be_visible(timeout=15_000)
    theirs.get_by_role("button", name="Claim").click()
    expect(chris.locator(row_id)).to_contain_text("You are reviewing this")
    expect(sam.locator(row_id)).to_contain_text("Being reviewed by cards2", timeout=15_000)

    # Chris's claim lapses (it is ten minutes; here it is made to have run out): Sam's queue
    # offers the item again, Sam claims it over the lapsed claim and approves it.
    ProposedAction.objects.filter(pk=pending.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    sam.goto("/review/")
    sam.locator(row_id).get_by_role("button", name="Claim").click()
    expect(sam.locator(row_id)).to_contain_text("You are reviewing this")
    sam.locator(row_id).get_by_role("button", name="Approve", exact=True).click()
    expect(sam.locator(row_id)).to_have_count(0)
    assert ProposedAction.objects.get(pk=pending.pk).status in (
        ProposedAction.Status.APPROVED,
        ProposedAction.Status.EXECUTED,
    )

    # Every claim and release is on the journey's timeline, by name.
    claims = Event.objects.filter(
        proposal=pending, kind__in=[Event.Kind.ACTION_CLAIMED, Event.Kind.CLAIM_RELEASED]
    ).order_by("pk")
    chris_user = User.objects.get(username="cards2")
    assert [(e.kind, e.actor_user.username) for e in claims] == [
        (Event.Kind.ACTION_CLAIMED, "supervisor"),
        (Event.Kind.CLAIM_RELEASED, "supervisor"),
        (Event.Kind.ACTION_CLAIMED, chris_user.username),
        (Event.Kind.ACTION_CLAIMED, "supervisor"),
    ]
    assert claims.last().data["lapsed_claim_of"] == "cards2"
    sam.goto(f"/journeys/{pending.journey_id}/")
    expect(sam.get_by_text("supervisor claimed Issue refund for review").first).to_be_visible()
    expect(sam.get_by_text("cards2's claim had lapsed")).to_be_visible()
