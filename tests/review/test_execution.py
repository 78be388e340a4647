"""Approved actions execute once, denied ones never; end to end with a real worker."""

from __future__ import annotations

import pytest

from demo.models import CoreEffect
from journeys import runtime
from journeys.models import ActionType, Event, Journey, JourneyDefinition, ProposedAction
from journeys.services import lock_journey, proposal_execute
from journeys.tasks import run_step
from review.models import PermissionScope
from review.services import proposal_approve, proposal_reject

from ..conftest import drive_to_end, wait_for
from .helpers import disputable_charge, refund, start, start_dispute

S = ProposedAction.Status


def test_an_approved_action_executes_once_even_when_the_turn_is_delivered_twice(demo, agent, supervisor):
    journey = start("card_dispute", customer="CUST-00010")
    pending = refund(journey, "120.00", agent=agent)
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    journey.refresh_from_db()
    args = (journey.pk, journey.epoch, journey.turn_seq)
    # The task itself, run in-process twice with the same arguments: a redelivered message.
    assert run_step.apply(args=args).get() == "executed"
    assert run_step.apply(args=args).get() == "duplicate"
    assert runtime.run_turn(*args, token="another-worker") == "duplicate"
    assert ProposedAction.objects.get(pk=pending.pk).status == S.EXECUTED
    assert CoreEffect.objects.filter(idempotency_key=pending.idempotency_key).count() == 1
    assert pending.events.filter(kind=Event.Kind.ACTION_EXECUTED).count() == 1


def test_executing_the_same_proposal_twice_makes_one_effect_in_the_database(demo, agent, supervisor):
    journey = start("card_dispute", customer="CUST-00010")
    pending = refund(journey, "120.00", agent=agent)
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    for _ in range(2):
        proposal = ProposedAction.objects.select_related("action_type").get(pk=pending.pk)
        # Even a proposal forced back to approved (a lost update) reaches the core bank with the
        # same idempotency key, and the unique key there keeps the effect single.
        ProposedAction.objects.filter(pk=pending.pk).update(status=S.APPROVED, executed_at=None)
        proposal.status = S.APPROVED
        proposal.journey = lock_journey(journey.pk)
        assert proposal_execute(proposal) == "executed"
    assert CoreEffect.objects.filter(idempotency_key=pending.idempotency_key).count() == 1


def test_a_denied_action_is_never_ready_to_execute(demo, agent):
    journey = start("fee_refund", customer="CUST-00010")
    denied = refund(journey, "9000.00", agent=agent)
    assert denied.status == S.DENIED
    assert not journey.proposals.ready_to_execute().filter(pk=denied.pk).exists()
    assert not CoreEffect.objects.filter(idempotency_key=denied.idempotency_key).exists()


@pytest.mark.worker
def test_a_denied_action_never_executes_and_the_journey_falls_back(celery_worker, agent):
    PermissionScope.objects.create(
        name="Lost cards: no blocks by agents",
        effect="deny",
        agent_group="demo",
        action_type=ActionType.objects.get(key="block_card"),
        definition=JourneyDefinition.objects.get(key="lost_card"),
    )
    journey = start("lost_card", customer="CUST-00011", reason="lost")
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.HUMAN
    denied = finished.proposals.get(action_type__key="block_card")
    assert denied.status == S.DENIED
    assert denied.decision_rule == "Lost cards: no blocks by agents"
    assert not CoreEffect.objects.filter(idempotency_key=denied.idempotency_key).exists()
    assert not denied.events.filter(kind=Event.Kind.ACTION_EXECUTED).exists()
    assert finished.events.filter(kind=Event.Kind.EXCEPTION, data__kind="policy_denied").exists()


@pytest.mark.worker
def test_an_approved_provisional_credit_lets_the_dispute_complete(celery_worker, supervisor):
    journey = start_dispute(disputable_charge())
    wait_for(
        lambda: Journey.objects.get(pk=journey.pk).status == Journey.Status.WAITING_APPROVAL,
        message="the dispute never asked for approval",
    )
    pending = Journey.objects.get(pk=journey.pk).proposals.pending().get()
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED, finished.needs_person_reason
    assert ProposedAction.objects.get(pk=pending.pk).status == S.EXECUTED
    assert CoreEffect.objects.filter(idempotency_key=pending.idempotency_key).count() == 1


@pytest.mark.worker
def test_a_rejected_credit_reaches_the_agent_which_carries_on_without_it(celery_worker, supervisor):
    journey = start_dispute(disputable_charge())
    wait_for(
        lambda: Journey.objects.get(pk=journey.pk).status == Journey.Status.WAITING_APPROVAL,
        message="the dispute never asked for approval",
    )
    pending = Journey.objects.get(pk=journey.pk).proposals.pending().get()
    proposal_reject(proposal_id=pending.pk, user=supervisor, reason="Merchant already refunded it")
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED, finished.needs_person_reason
    note = finished.events.filter(kind=Event.Kind.AGENT_NOTE, summary__contains="Merchant already refunded it")
    assert note.exists()
    assert not CoreEffect.objects.filter(idempotency_key=pending.idempotency_key).exists()
