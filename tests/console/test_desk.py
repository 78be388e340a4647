"""The desks' work queue: claim the next item, claim a selection, assign, release — one winner
when people claim at once, every step through the journey lifecycle and on the audit trail."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from journeys.control import (
    AlreadyControlled,
    ControlError,
    NotAllowed,
    journey_assign,
    journey_claim,
    journey_claim_next,
    journey_claim_selected,
    journey_release,
    journey_take_over,
)
from journeys.models import Event, Journey
from review.models import AuditRecord

from ..review.case_helpers import hand_over, new_journey


def _on_desk(customer: str = "CUST-00001", *, sla_minutes: int | None = None) -> Journey:
    with transaction.atomic():
        journey = hand_over(new_journey("card_dispute", customer), "agent_error", "The agent gave up.")
    if sla_minutes is not None:
        Journey.objects.filter(pk=journey.pk).update(sla_deadline=timezone.now() + timedelta(minutes=sla_minutes))
    journey.refresh_from_db()
    return journey


def _colleague(name: str = "colleague", team: str = "Cards team") -> User:
    user = User.objects.create_user(name, password="demo")
    user.groups.add(Group.objects.get(name=team))
    return user


def test_claim_next_takes_the_most_urgent_item_first(supervisor):
    later = _on_desk("CUST-00001", sla_minutes=90)
    urgent = _on_desk("CUST-00002", sla_minutes=5)
    first = journey_claim_next(user=supervisor)
    second = journey_claim_next(user=supervisor)
    assert [first.pk, second.pk] == [urgent.pk, later.pk]
    assert journey_claim_next(user=supervisor) is None
    urgent.refresh_from_db()
    assert urgent.controller_user == supervisor and urgent.status == Journey.Status.HUMAN
    assert urgent.epoch == 1


def test_claim_next_only_sees_desks_the_user_works(supervisor, supervisor2):
    _on_desk()
    assert journey_claim_next(user=supervisor2) is None  # a card dispute is not the Servicing desk's


def test_a_claim_is_a_takeover_on_the_timeline_and_the_audit_trail(supervisor):
    journey = _on_desk()
    journey_claim(journey_id=journey.pk, user=supervisor)
    event = journey.events.filter(kind=Event.Kind.TAKEOVER).get()
    assert event.summary == f"supervisor claimed J-{journey.pk} from Cards disputes desk."
    assert event.actor_user == supervisor and event.data["claimed_by"] == "supervisor"
    assert AuditRecord.objects.filter(journey_id=journey.pk, summary=event.summary).exists()


def test_a_second_claim_is_told_who_has_it(supervisor):
    colleague = _colleague()
    journey = _on_desk()
    journey_claim(journey_id=journey.pk, user=colleague)
    with pytest.raises(AlreadyControlled, match="colleague claimed") as exc:
        journey_claim(journey_id=journey.pk, user=supervisor)
    assert exc.value.holder == "colleague"


def test_a_journey_the_agent_runs_is_not_on_a_desk(supervisor):
    journey = new_journey()
    with pytest.raises(ControlError, match="not on a desk"):
        journey_claim(journey_id=journey.pk, user=supervisor)


def test_people_without_the_take_over_right_cannot_claim(compliance, supervisor2):
    journey = _on_desk()
    for user in (compliance, supervisor2):
        with pytest.raises(NotAllowed):
            journey_claim(journey_id=journey.pk, user=user)


def test_claiming_a_selection_reports_the_items_someone_else_had(supervisor):
    colleague = _colleague()
    mine, theirs = _on_desk("CUST-00001"), _on_desk("CUST-00002")
    journey_claim(journey_id=theirs.pk, user=colleague)
    claimed, refused = journey_claim_selected(journey_ids=[mine.pk, theirs.pk], user=supervisor)
    assert [j.pk for j in claimed] == [mine.pk]
    assert len(refused) == 1 and refused[0].startswith(f"colleague claimed J-{theirs.pk} first (at ")


def test_assign_gives_the_item_to_a_team_member_and_names_the_assigner(supervisor):
    colleague = _colleague()
    journey = _on_desk()
    journey_assign(journey_id=journey.pk, user=supervisor, assignee=colleague)
    journey.refresh_from_db()
    assert journey.controller_user == colleague
    event = journey.events.filter(kind=Event.Kind.TAKEOVER).get()
    assert event.actor_user == supervisor
    assert event.summary == f"supervisor assigned J-{journey.pk} from Cards disputes desk to colleague."


def test_assign_refuses_someone_outside_the_team_or_the_desk(supervisor, supervisor2, compliance):
    journey = _on_desk()
    for stranger in (supervisor2, compliance):
        with pytest.raises(NotAllowed):
            journey_assign(journey_id=journey.pk, user=supervisor, assignee=stranger)
    journey.refresh_from_db()
    assert journey.controller_user is None


def test_release_puts_the_journey_back_on_the_desk(supervisor):
    journey = _on_desk()
    journey_claim(journey_id=journey.pk, user=supervisor)
    journey_release(journey_id=journey.pk, user=supervisor, note="Needs the fraud team.")
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN and journey.controller_user is None
    event = journey.events.order_by("-id").first()
    assert event.kind == Event.Kind.HANDED_TO_PERSON
    assert event.summary == f"supervisor released J-{journey.pk} to Cards disputes desk. Note: Needs the fraud team."
    assert journey_claim_next(user=supervisor).pk == journey.pk


def test_only_the_holder_or_a_forcer_releases(supervisor, admin_user):
    colleague = _colleague()
    journey = _on_desk()
    journey_claim(journey_id=journey.pk, user=colleague)
    with pytest.raises(NotAllowed, match="only they can release"):
        journey_release(journey_id=journey.pk, user=supervisor)
    journey_release(journey_id=journey.pk, user=admin_user)
    assert f"released J-{journey.pk} from colleague" in journey.events.order_by("-id").first().summary


def test_a_person_who_took_over_from_the_agent_can_release_to_the_desk(supervisor):
    journey = new_journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    journey_release(journey_id=journey.pk, user=supervisor)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN and journey.controller_user is None


# --- races: separate connections, real transactions -------------------------------------------


def _race(users, action) -> dict[str, object]:
    barrier = threading.Barrier(len(users))
    outcomes: dict[str, object] = {}

    def run(user):
        try:
            barrier.wait(timeout=5)
            outcomes[user.username] = action(user)
        except ControlError as exc:
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return outcomes


@pytest.mark.parametrize("attempt", range(3))
def test_two_people_claiming_the_same_item_have_one_winner(transactional_db, supervisor, attempt):
    colleague = _colleague()
    journey = _on_desk()
    outcomes = _race([supervisor, colleague], lambda u: journey_claim(journey_id=journey.pk, user=u).pk)
    winners = [name for name, result in outcomes.items() if result == journey.pk]
    assert len(winners) == 1
    loser = ({"supervisor", "colleague"} - set(winners)).pop()
    assert isinstance(outcomes[loser], AlreadyControlled) and outcomes[loser].holder == winners[0]
    journey.refresh_from_db()
    assert journey.controller_user.username == winners[0]
    assert journey.events.filter(kind=Event.Kind.TAKEOVER).count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_people_pressing_claim_next_at_once_get_different_items(transactional_db, supervisor, attempt):
    people = [supervisor, _colleague("colleague"), _colleague("colleague2"), _colleague("colleague3")]
    on_desk = {_on_desk(f"CUST-0000{n}", sla_minutes=10 + n).pk for n in range(1, 4)}
    outcomes = _race(people, lambda u: getattr(journey_claim_next(user=u), "pk", None))
    got = [pk for pk in outcomes.values() if pk is not None]
    assert sorted(got) == sorted(on_desk)  # three items, three different claimers
    assert list(outcomes.values()).count(None) == 1  # the fourth found the desk empty, no error
    assert Event.objects.filter(kind=Event.Kind.TAKEOVER, journey_id__in=on_desk).count() == 3


def test_a_claim_racing_an_assignment_has_one_winner(transactional_db, supervisor):
    colleague = _colleague()
    journey = _on_desk()

    def act(user):
        if user == supervisor:
            return journey_assign(journey_id=journey.pk, user=supervisor, assignee=colleague).controller_user_id
        return journey_claim(journey_id=journey.pk, user=user).controller_user_id

    other = _colleague("colleague2")
    outcomes = _race([supervisor, other], act)
    assert sum(1 for r in outcomes.values() if isinstance(r, int)) == 1
    assert journey.events.filter(kind=Event.Kind.TAKEOVER).count() == 1


# --- the page -----------------------------------------------------------------------------------


def test_the_desk_page_lists_waiting_and_claimed_items_with_who_has_them(client, supervisor):
    colleague = _colleague()
    waiting, claimed = _on_desk("CUST-00001"), _on_desk("CUST-00002")
    journey_claim(journey_id=claimed.pk, user=colleague)
    client.force_login(supervisor)
    page = client.get(reverse("desk")).content.decode()
    assert f'value="{waiting.pk}"' in page
    assert '<span class="badge person">colleague</span>' in page
    assert "The agent gave up." in page


def test_claim_next_opens_the_claimed_journey(client, supervisor):
    journey = _on_desk()
    client.force_login(supervisor)
    response = client.post(reverse("desk_claim_next"))
    assert response.status_code == 302 and response.url == reverse("journey_detail", args=[journey.pk])
    empty = client.post(reverse("desk_claim_next"), follow=True)
    assert "Nothing is waiting on your desks." in empty.content.decode()


def test_forged_claims_are_refused_without_a_500(client, supervisor, supervisor2):
    journey = _on_desk()
    client.force_login(supervisor2)
    for data in ({"journeys": [journey.pk]}, {"journeys": ["x"]}, {"journeys": ["-1"]}, {}):
        response = client.post(reverse("desk_claim_selected"), data, follow=True)
        assert response.status_code == 200
    assert client.post(reverse("desk_claim_next"), {"definition": "card_dispute"}, follow=True).status_code == 200
    assert client.post(reverse("journey_assign", args=[journey.pk]), {"assignee": "supervisor2"}).status_code == 404
    client.force_login(supervisor)
    bad = client.post(reverse("journey_assign", args=[journey.pk]), {"assignee": "supervisor2"}, follow=True)
    assert "Choose a member of your team" in bad.content.decode()
    journey.refresh_from_db()
    assert journey.controller_user is None


def test_releasing_from_the_page_names_the_desk(client, supervisor):
    journey = _on_desk()
    journey_claim(journey_id=journey.pk, user=supervisor)
    client.force_login(supervisor)
    page = client.post(reverse("journey_release", args=[journey.pk]), follow=True).content.decode()
    assert f"J-{journey.pk} is back on Cards disputes desk." in page


def test_the_desk_polls_through_the_live_poll_helper(client, supervisor):
    import re

    journey = _on_desk("CUST-00001")
    client.force_login(supervisor)
    htmx = {"HTTP_HX_REQUEST": "true"}
    page = client.get(reverse("desk"))
    assert "HX-Request" in page.get("Vary", "")
    cursor = re.search(r'id="desk-items"[^>]*data-cursor="([^"]+)"', page.content.decode()).group(1)
    assert "•" not in cursor and not re.search(r"\d{13,}", cursor)
    unchanged = client.get(reverse("desk"), {"cursor": cursor}, **htmx)
    assert unchanged.status_code == 204 and "HX-Request" in unchanged.get("Vary", "")
    # A claim changes what the desk shows: the poll gets the fragment.
    journey_claim(journey_id=journey.pk, user=_colleague())
    moved = client.get(reverse("desk"), {"cursor": cursor}, **htmx)
    body = moved.content.decode()
    assert moved.status_code == 200 and body.lstrip().startswith('<div id="desk-items"') and "<html" not in body
    assert '<span class="badge person">colleague</span>' in body
