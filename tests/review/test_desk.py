"""The demo's automated desk worker approves routine actions and leaves the unusual to people."""

from __future__ import annotations

import os
from datetime import timedelta
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from journeys.models import Event, Journey, ProposedAction
from review.desk import DESK_USERNAME, desk_round, desk_user

from .helpers import refund, start

S = ProposedAction.Status


def _dispute(customer: str, amount: str) -> Journey:
    journey = start("card_dispute", customer=customer)
    journey.context["facts"] = {"transaction": {"id": 1, "description": "Metro Rail", "amount": amount}}
    Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    journey.refresh_from_db()
    return journey


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
    monkeypatch.setitem(os.environ, "DEMO_DESK", "off")
    out = StringIO()
    call_command("demo_desk", duration=0.5, interval=0.1, stdout=out)
    assert "off" in out.getvalue()
    assert ProposedAction.objects.get(pk=pending.pk).status == S.PENDING
    assert not get_user_model().objects.filter(username=DESK_USERNAME).exists()


def test_demo_desk_on_approves_routine_items(demo, agent, monkeypatch):
    pending = refund(_dispute("CUST-00007", "50.00"), "50.00", agent=agent)
    _age(pending)
    monkeypatch.setitem(os.environ, "DEMO_DESK", "on")
    call_command("demo_desk", duration=0.5, interval=0.1, after=60, stdout=StringIO())
    assert ProposedAction.objects.get(pk=pending.pk).status in (S.APPROVED, S.EXECUTED)


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
