"""The demo's automated desk worker approves routine actions, settles routine desk items and
leaves the unusual to people."""

from __future__ import annotations

import os
from datetime import timedelta
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from journeys.models import Event, ExceptionKind, Journey, ProposedAction
from journeys.services import journey_hand_to_person, lock_journey
from review.desk import DESK_PLAYBOOK, DESK_USERNAME, desk_items_round, desk_round, desk_user

from .helpers import refund, start

S = ProposedAction.Status


def _dispute(customer: str, amount: str) -> Journey:
    journey = start("card_dispute", customer=customer)
    journey.context["facts"] = {"transaction": {"id": 1, "description": "Metro Rail", "amount": amount}}
    Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    journey.refresh_from_db()
    return journey


def _on_desk(kind: str, customer: str, *, waited: int = 120, **context) -> Journey:
    """A card dispute its agent handed to the Cards disputes desk for ``kind``, ``waited`` s ago."""
    journey = start("card_dispute", customer=customer, **context.pop("request", {}))
    if context:
        journey.context.update(context)
        Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    with transaction.atomic():
        journey_hand_to_person(lock_journey(journey.pk), reason=f"Because: {kind}", exception_kind=kind)
    Journey.objects.filter(pk=journey.pk).update(state_changed_at=timezone.now() - timedelta(seconds=waited))
    return Journey.objects.get(pk=journey.pk)


def _age(proposal: ProposedAction, seconds: int = 120) -> None:
    ProposedAction.objects.filter(pk=proposal.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_the_desk_is_a_clearly_named_account_that_cannot_log_in(demo):
    desk = desk_user()
    assert desk.username == DESK_USERNAME and "automated" in desk.get_full_name()
    assert not desk.has_usable_password()
    assert set(desk.groups.values_list("name", flat=True)) == {"Cards team", "Servicing team"}
    assert desk_user().pk == desk.pk  # idempotent


def test_the_desk_approves_a_routine_refund_after_it_waited_and_leaves_the_rest(demo, agent, supervisor):
    desk = desk_user()
    routine = refund(_dispute("CUST-00001", "120.00"), "120.00", agent=agent)
    doubled = refund(_dispute("CUST-00002", "60.00"), "120.00", agent=agent)  # the agent got it wrong
    young = refund(_dispute("CUST-00003", "80.00"), "80.00", agent=agent)
    by_person = refund(_dispute("CUST-00004", "90.00"), "90.00", user=supervisor)
    for proposal in (routine, doubled, by_person):
        _age(proposal)
    done = desk_round(desk, older_than=timedelta(seconds=90))
    assert (done.approved, done.left_for_a_person) == (1, 2)
    assert ProposedAction.objects.get(pk=routine.pk).status in (S.APPROVED, S.EXECUTED)
    for left in (doubled, young, by_person):
        assert ProposedAction.objects.get(pk=left.pk).status == S.PENDING
    # An audited decision by the desk account, like a person's.
    event = Event.objects.get(proposal=routine, kind=Event.Kind.ACTION_APPROVED)
    assert event.actor_user == desk


def test_the_desk_never_goes_over_its_teams_limit(demo, agent):
    desk = desk_user()
    big = refund(_dispute("CUST-00005", "2400.00"), "2400.00", agent=agent)  # two approvers, over 1,000
    _age(big)
    done = desk_round(desk, older_than=timedelta(seconds=90))
    assert done.approved == 0
    assert ProposedAction.objects.get(pk=big.pk).status == S.PENDING


def test_demo_desk_off_stays_idle_and_decides_nothing(demo, agent, monkeypatch):
    pending = refund(_dispute("CUST-00006", "50.00"), "50.00", agent=agent)
    _age(pending)
    on_desk = _on_desk(ExceptionKind.STEP_FAILED, "CUST-00009")
    monkeypatch.setitem(os.environ, "DEMO_DESK", "off")
    out = StringIO()
    call_command("demo_desk", duration=0.5, interval=0.1, stdout=out)
    assert "off" in out.getvalue()
    assert ProposedAction.objects.get(pk=pending.pk).status == S.PENDING
    assert Journey.objects.get(pk=on_desk.pk).status == Journey.Status.HUMAN
    assert not get_user_model().objects.filter(username=DESK_USERNAME).exists()


def test_demo_desk_on_approves_routine_items_and_settles_routine_desk_items(demo, agent, monkeypatch):
    pending = refund(_dispute("CUST-00007", "50.00"), "50.00", agent=agent)
    _age(pending)
    on_desk = _on_desk(ExceptionKind.STEP_FAILED, "CUST-00009")
    monkeypatch.setitem(os.environ, "DEMO_DESK", "on")
    out = StringIO()
    call_command("demo_desk", duration=0.5, interval=0.1, after=60, stdout=out)
    assert ProposedAction.objects.get(pk=pending.pk).status in (S.APPROVED, S.EXECUTED)
    assert Journey.objects.get(pk=on_desk.pk).status == Journey.Status.RUNNING
    assert "handed back 1 desk item" in out.getvalue()


def test_each_demo_team_has_two_approvers_so_a_supervisors_own_proposal_can_be_approved(demo, supervisor):
    from review.services import proposal_approve

    for team, people in {
        "Cards team": {"supervisor", "cards2"},
        "Servicing team": {"supervisor2", "servicing2"},
    }.items():
        assert set(get_user_model().objects.filter(groups__name=team).values_list("username", flat=True)) == people
    own = refund(_dispute("CUST-00008", "70.00"), "70.00", user=supervisor)
    proposal_approve(proposal_id=own.pk, user=get_user_model().objects.get(username="cards2"))
    assert ProposedAction.objects.get(pk=own.pk).status in (S.APPROVED, S.EXECUTED)


def test_the_desk_claims_and_hands_back_the_routine_desk_items_and_leaves_the_rest(demo):
    desk = desk_user()
    failed = _on_desk(ExceptionKind.STEP_FAILED, "CUST-00001")
    unsure = _on_desk(
        ExceptionKind.LOW_CONFIDENCE,
        "CUST-00002",
        request={"kind": "subscription"},
        facts={"classification": "subscription", "confidence": 0.55},
    )
    mismatch = _on_desk(
        ExceptionKind.LOW_CONFIDENCE,
        "CUST-00003",
        request={"kind": "fraud"},
        facts={"classification": "subscription", "confidence": 0.55},
    )
    complaint = _on_desk(ExceptionKind.CUSTOMER_COMPLAINT, "CUST-00004")
    young = _on_desk(ExceptionKind.STEP_FAILED, "CUST-00005", waited=10)
    done = desk_items_round(desk, older_than=timedelta(seconds=90))
    assert (done.handed_back, done.desk_left) == (2, 1)
    for settled, kind in ((failed, ExceptionKind.STEP_FAILED), (unsure, ExceptionKind.LOW_CONFIDENCE)):
        journey = Journey.objects.get(pk=settled.pk)
        assert journey.status == Journey.Status.RUNNING and journey.controller_user_id is None
        takeover = journey.events.get(kind=Event.Kind.TAKEOVER)
        back = journey.events.get(kind=Event.Kind.HAND_BACK)
        # Claimed from the desk and handed back, both by the automated account, with its note.
        assert takeover.actor_user == desk and "demo-desk claimed" in takeover.summary
        assert back.actor_user == desk and back.data["note"] == DESK_PLAYBOOK[kind]
        assert back.data["then"] == "continue"
        assert journey.context["guidance"] == [f"demo-desk: {DESK_PLAYBOOK[kind]}"]
    for left in (mismatch, complaint, young):
        journey = Journey.objects.get(pk=left.pk)
        assert journey.status == Journey.Status.HUMAN and journey.controller_user_id is None
        assert not journey.events.filter(actor_user=desk).exists()


def test_the_desk_settles_a_journey_once_then_it_is_a_persons(demo):
    desk = desk_user()
    failed = _on_desk(ExceptionKind.STEP_FAILED, "CUST-00006")
    assert desk_items_round(desk, older_than=timedelta(seconds=90)).handed_back == 1
    with transaction.atomic():
        journey_hand_to_person(lock_journey(failed.pk), reason="Again", exception_kind=ExceptionKind.STEP_FAILED)
    Journey.objects.filter(pk=failed.pk).update(state_changed_at=timezone.now() - timedelta(seconds=300))
    assert desk_items_round(desk, older_than=timedelta(seconds=90)).handed_back == 0
    assert Journey.objects.get(pk=failed.pk).status == Journey.Status.HUMAN


def test_the_desk_leaves_an_item_a_person_claimed(demo, supervisor):
    from journeys.control import journey_claim

    desk = desk_user()
    failed = _on_desk(ExceptionKind.STEP_FAILED, "CUST-00007")
    journey_claim(journey_id=failed.pk, user=supervisor)
    assert desk_items_round(desk, older_than=timedelta(seconds=90)).handed_back == 0
    assert Journey.objects.get(pk=failed.pk).controller_user == supervisor
