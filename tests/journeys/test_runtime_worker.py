"""A real Celery worker runs journeys end to end."""

from __future__ import annotations

import pytest

from demo.models import CoreEffect
from demo.simulator import Simulator
from journeys.models import Event, Journey, ProposedAction
from journeys.services import journey_start

from ..conftest import drive_to_end

pytestmark = [pytest.mark.worker]


@pytest.fixture(autouse=True)
def allow_every_action(monkeypatch):
    """These tests prove the runtime carries a journey end to end; governance (pending
    approvals, denials) has its own tests in tests/review, so every action is allowed here."""
    from django.conf import settings

    monkeypatch.setitem(settings.HANDOFF, "POLICY_ENGINE", "journeys.policy.allow_everything")


@pytest.mark.parametrize("definition", ["card_dispute", "lost_card", "fee_refund", "address_change"])
def test_worker_runs_a_journey_of_each_definition_to_completion(celery_worker, agent, definition):
    sim = Simulator(seed=3)
    journey = sim.open_journey(definition, persona="cooperative")
    # Make the run deterministic: a verified customer, an existing address, a non-hardship case.
    journey.context["request"]["identity_ok"] = True
    if definition == "address_change":
        journey.context["request"]["new_address"] = "12 Station Road, Springfield SP1 2CD"
    Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    from demo.models import CoreCustomer

    CoreCustomer.objects.filter(ref=journey.customer_ref).update(hardship=False)

    finished = drive_to_end(journey.pk)

    assert finished.status == Journey.Status.COMPLETED, finished.needs_person_reason
    kinds = list(finished.events.order_by("id").values_list("kind", flat=True))
    assert kinds[0] == Event.Kind.JOURNEY_STARTED
    assert kinds[-1] == Event.Kind.COMPLETED
    # Every step the journey went through was started and finished, in order.
    started = [e.step for e in finished.events.filter(kind=Event.Kind.STEP_STARTED).order_by("id")]
    finished_steps = [e.step for e in finished.events.filter(kind=Event.Kind.STEP_FINISHED).order_by("id")]
    assert started == finished_steps
    assert started[0] == finished.version.start_step
    # Every executed action has its proposal, decision and execution events, in that order.
    for proposal in finished.proposals.all():
        assert proposal.status == ProposedAction.Status.EXECUTED
        trail = list(proposal.events.order_by("id").values_list("kind", flat=True))
        assert trail[:3] == [Event.Kind.ACTION_PROPOSED, Event.Kind.ACTION_DECIDED, Event.Kind.ACTION_EXECUTED]
    effect_keys = list(CoreEffect.objects.values_list("idempotency_key", flat=True))
    assert len(effect_keys) == len(set(effect_keys))


def test_journey_started_in_a_transaction_is_enqueued_only_after_commit(celery_worker, agent):
    journey = journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED


def test_the_same_task_delivered_twice_has_one_effect(celery_worker, agent):
    from journeys.tasks import run_step

    journey = journey_start(definition="lost_card", customer_ref="CUST-00007", request={"reason": "lost"})
    # Deliver the first turn's message again, as a broker would after a lost acknowledgement.
    run_step.delay(journey.pk, 0, 0)
    run_step.delay(journey.pk, 0, 0)
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED
    assert finished.proposals.filter(action_type__key="lookup_account").count() == 1
    assert finished.proposals.filter(action_type__key="block_card").count() == 1
    assert CoreEffect.objects.filter(idempotency_key__startswith=f"j{journey.pk}-", action="block_card").count() == 1


def test_a_journey_committed_but_never_enqueued_is_picked_up_by_the_sweeper(celery_worker, agent, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from journeys import services
    from journeys.tasks import sweep_due_journeys

    # A crash between commit and publish: the journey is committed, its first turn never sent.
    monkeypatch.setattr(services, "enqueue_turn", lambda journey, countdown=None: None)
    journey = journey_start(definition="lost_card", customer_ref="CUST-00008", request={"reason": "lost"})
    monkeypatch.undo()
    Journey.objects.filter(pk=journey.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    assert Journey.objects.get(pk=journey.pk).turn_seq == 0

    sweep_due_journeys.delay()  # what beat does every few seconds
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED
