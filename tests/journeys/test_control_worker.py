"""With a real worker: the takeover fence, the stop button, and hand-back to completion."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction

from demo.models import CoreEffect
from journeys.control import (
    AlreadyControlled,
    agents_pause,
    agents_resume,
    journey_hand_back,
    journey_take_over,
    person_send_message,
)
from journeys.models import Agent, Event, Journey, JourneyDefinition, ProposedAction
from journeys.services import journey_hand_to_person, journey_start, lock_journey

from ..conftest import drive_to_end, wait_for

pytestmark = [pytest.mark.worker]


def _lost_card() -> Journey:
    return journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})


def test_an_agent_turn_in_flight_during_a_takeover_never_lands(celery_worker, agent, supervisor):
    Agent.objects.filter(pk=agent.pk).update(config={"think_seconds": 1.5})
    journey = _lost_card()
    # Phase A has leased the journey: the agent is thinking now.
    wait_for(
        lambda: Journey.objects.get(pk=journey.pk).lease_token,
        timeout=10,
        message="the turn never started",
    )
    effects_before = CoreEffect.objects.count()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    takeover = Event.objects.get(journey=journey, kind=Event.Kind.TAKEOVER)

    dropped = wait_for(
        lambda: Event.objects.filter(journey=journey, kind=Event.Kind.TURN_DROPPED).first(),
        timeout=10,
        message="the in-flight turn did not report that it was dropped",
    )
    assert dropped.pk > takeover.pk
    assert "dropped when its result came back" in dropped.summary
    time.sleep(0.3)  # give a wrongly landing result the chance to show itself
    assert not ProposedAction.objects.filter(journey=journey).exists()
    assert not Event.objects.filter(journey=journey, pk__gt=takeover.pk).exclude(kind=Event.Kind.TURN_DROPPED).exists()
    assert CoreEffect.objects.count() == effects_before
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN and journey.controller_user == supervisor


def test_no_agent_step_runs_while_paused_and_resume_completes(celery_worker, agent, admin_user):
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    agents_pause(user=admin_user, definition=lost_card, reason="incident drill")
    journey = _lost_card()
    time.sleep(1.0)  # the queued turn reaches the worker and is refused
    journey.refresh_from_db()
    assert journey.turn_seq == 0 and journey.lease_token == ""
    assert not journey.proposals.exists()
    assert not journey.events.exclude(kind__in=[Event.Kind.JOURNEY_STARTED, Event.Kind.STEP_STARTED]).exists()

    agents_resume(user=admin_user, definition=lost_card, reason="drill over")
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED


def test_a_pause_stops_a_journey_midway_and_resume_continues_where_it_stopped(celery_worker, agent, admin_user):
    Agent.objects.filter(pk=agent.pk).update(config={"think_seconds": 0.3})
    journey = _lost_card()
    wait_for(lambda: Journey.objects.get(pk=journey.pk).turn_seq >= 2, timeout=15)
    agents_pause(user=admin_user, definition=None, reason="stop everything")
    # A turn in flight comes back and is dropped (its lease freed); nothing runs after that.
    wait_for(lambda: not Journey.objects.get(pk=journey.pk).lease_token, timeout=10)
    stopped = Journey.objects.get(pk=journey.pk)
    time.sleep(1.0)
    still = Journey.objects.get(pk=journey.pk)
    assert (still.turn_seq, still.current_step) == (stopped.turn_seq, stopped.current_step)
    assert still.status == Journey.Status.RUNNING
    agents_resume(user=admin_user, definition=None)
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED
    started = [e.step for e in finished.events.filter(kind=Event.Kind.STEP_STARTED).order_by("id")]
    assert len(started) == len(set(started))  # no step was run from the start again


def test_hand_back_resumes_the_agent_which_completes_the_journey(celery_worker, agent, supervisor):
    with transaction.atomic():
        journey = _lost_card()
        journey_hand_to_person(
            lock_journey(journey.pk),
            reason="The customer asked for a person.",
            exception_kind="customer_request",
        )
    journey_take_over(journey_id=journey.pk, user=supervisor)
    person_send_message(journey_id=journey.pk, user=supervisor, text="I'll block your card now.")
    journey_hand_back(journey_id=journey.pk, user=supervisor, note="Customer confirmed the loss.")
    finished = drive_to_end(journey.pk)
    assert finished.status == Journey.Status.COMPLETED
    assert "supervisor: Customer confirmed the loss." in finished.context["guidance"]
    kinds = list(finished.events.order_by("id").values_list("kind", flat=True))
    assert kinds.index(Event.Kind.HAND_BACK) < kinds.index(Event.Kind.COMPLETED)


def test_two_supervisors_taking_over_at_once_have_exactly_one_winner(transactional_db, supervisor):
    colleague = User.objects.create_user("colleague", password="x")
    colleague.groups.add(Group.objects.get(name="Cards team"))
    journey = _lost_card()
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(user):
        try:
            barrier.wait(timeout=5)
            journey_take_over(journey_id=journey.pk, user=user)
            outcomes[user.username] = "won"
        except AlreadyControlled as exc:
            outcomes[user.username] = f"lost to {exc.holder}"
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=attempt, args=(u,)) for u in (supervisor, colleague)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1
    loser = ({"supervisor", "colleague"} - set(winners)).pop()
    assert outcomes[loser] == f"lost to {winners[0]}"
    journey.refresh_from_db()
    assert journey.controller_user.username == winners[0]
    assert journey.epoch == 1
    assert journey.events.filter(kind=Event.Kind.TAKEOVER).count() == 1
