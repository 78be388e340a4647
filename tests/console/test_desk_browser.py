"""Two people at one desk, each in their own browser: claim next, claim the same selection at
once, release, assign; each sees who has what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from journeys.models import Event, Journey

from ..review.case_helpers import hand_over, new_journey

pytestmark = [pytest.mark.browser]


def _on_desk(customer: str, sla_minutes: int) -> Journey:
    with transaction.atomic():
        journey = hand_over(new_journey("card_dispute", customer), "agent_error", f"Agent gave up on {customer}.")
    Journey.objects.filter(pk=journey.pk).update(sla_deadline=timezone.now() + timedelta(minutes=sla_minutes))
    return journey


def test_two_people_claim_release_and_assign_at_one_desk(transactional_db, supervisor, login_page):
    colleague = User.objects.create_user("colleague", password="demo")
    colleague.groups.add(Group.objects.get(name="Cards team"))
    urgent, second, third = (_on_desk(f"CUST-0000{n}", 5 * n) for n in (1, 2, 3))

    sam = login_page("supervisor")
    kim = login_page("colleague")
    for page in (sam, kim):
        page.goto("/desk/")
        expect(page.locator("h1")).to_have_text("Desk")
        expect(page.locator(f'tr[data-journey="{urgent.pk}"]')).to_contain_text("Agent gave up on CUST-00001.")

    # Claim next: the most urgent item to the first, the next one to the second.
    sam.get_by_role("button", name="Claim next").click()
    expect(sam.get_by_text(f"You have J-{urgent.pk}")).to_be_visible()
    expect(sam.locator("#journey-facts")).to_contain_text("supervisor")
    kim.get_by_role("button", name="Claim next").click()
    expect(kim.get_by_text(f"You have J-{second.pk}")).to_be_visible()

    # Both select the last item and claim it at once: one wins, the other is told who did.
    for page in (sam, kim):
        page.goto("/desk/")
        page.locator(f"#select-{third.pk}").check()
    sam_click = sam.get_by_role("button", name="Claim selected")
    kim_click = kim.get_by_role("button", name="Claim selected")
    sam_click.click(no_wait_after=True)
    kim_click.click(no_wait_after=True)
    for page in (sam, kim):
        page.wait_for_load_state()
        expect(page.locator("ul.messages")).to_be_visible()
    third.refresh_from_db()
    winner = third.controller_user.username
    loser_page = kim if winner == "supervisor" else sam
    expect(loser_page.get_by_text(f"{winner} claimed J-{third.pk} first")).to_be_visible()
    assert third.events.filter(kind=Event.Kind.TAKEOVER).count() == 1

    # Who has what is on the desk and on the board.
    claimed_rows = kim.locator("table.desk").nth(1)
    expect(claimed_rows.locator(f'tr[data-journey="{urgent.pk}"]')).to_contain_text("supervisor")
    kim.goto("/board/")
    expect(kim.locator(f'tr[data-journey="{second.pk}"]')).to_contain_text("colleague")
    expect(kim.locator(f'tr[data-journey="{urgent.pk}"]')).to_contain_text("supervisor")

    # Sam releases the urgent item; Kim's open desk page shows it waiting again, by itself.
    kim.goto("/desk/")
    sam.goto("/desk/")
    sam.locator(f'tr[data-journey="{urgent.pk}"]').get_by_role("button", name="Release").click()
    expect(sam.get_by_text(f"J-{urgent.pk} is back on Cards disputes desk.")).to_be_visible()
    waiting = kim.locator("table.desk").first.locator(f'tr[data-journey="{urgent.pk}"]')
    expect(waiting).to_be_visible(timeout=15_000)  # the desk polls

    # Kim assigns it to Sam; Sam's desk shows it as his.
    waiting.get_by_label(f"Assign J-{urgent.pk} to").select_option("supervisor")
    waiting.get_by_role("button", name="Assign").click()
    expect(kim.get_by_text(f"J-{urgent.pk} is assigned to supervisor.")).to_be_visible()
    sam.goto("/desk/")
    expect(sam.locator("table.desk").nth(1).locator(f'tr[data-journey="{urgent.pk}"]')).to_contain_text("supervisor")
    urgent.refresh_from_db()
    assert urgent.controller_user.username == "supervisor"
    assigned = urgent.events.filter(kind=Event.Kind.TAKEOVER).order_by("-id").first()
    assert assigned.actor_user == colleague and "colleague assigned" in assigned.summary
