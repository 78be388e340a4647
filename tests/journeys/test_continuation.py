"""A worker carries a journey on: the next turn runs in the task that ran the last one, without
the broker's hop, while the task's time allows (``journeys.tasks``, ``HANDOFF_CONTINUE_SECONDS``)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from demo.models import CoreEffect
from journeys import runtime, tasks
from journeys.control import agents_pause, agents_resume, journey_take_over
from journeys.lifecycle import journey as lifecycle
from journeys.models import Event, Journey
from journeys.services import journey_start

from ..conftest import drive_to_end

LOST_CARD_TURNS = 10  # the scripted agent's lost-card journey, start to completion


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    """What went through the broker (the task's ``delay`` and ``apply_async``), instead of sending it."""
    out: list[tuple] = []
    monkeypatch.setattr(tasks.run_step, "delay", lambda *args: out.append(tuple(args)))
    monkeypatch.setattr(tasks.run_step, "apply_async", lambda args=(), countdown=None: out.append(tuple(args)))
    return out


@pytest.fixture
def budget(monkeypatch):
    def set_to(seconds: float) -> None:
        monkeypatch.setitem(settings.HANDOFF, "CONTINUE_SECONDS", seconds)

    return set_to


def turn_lines(caplog) -> list[tuple[int, str]]:
    return [(r.turn, r.outcome) for r in caplog.records if getattr(r, "event", None) == "turn"]


def start(customer: str = "CUST-00003") -> Journey:
    return journey_start(definition="lost_card", customer_ref=customer, request={"reason": "lost"})


def run_task(journey: Journey, *, message: str = "message-1", turn: int | None = None) -> str:
    args = (journey.pk, journey.epoch, journey.turn_seq if turn is None else turn)
    return tasks.run_step.apply(args=args, task_id=message).get()


@pytest.mark.django_db(transaction=True)
def test_one_task_carries_the_journey_through_every_turn_it_has_time_for(agent, sent, budget, caplog):
    budget(60)
    caplog.set_level(logging.INFO, logger="handoff.runtime")
    journey = start()
    sent.clear()  # the first turn, sent at the start

    assert run_task(journey) == "completed"

    journey.refresh_from_db()
    assert journey.status == Journey.Status.COMPLETED
    # Every turn ran once, in order, each a turn of its own with its own log line.
    assert turn_lines(caplog) == [(n, outcome) for n, (_, outcome) in enumerate(turn_lines(caplog))]
    assert len(turn_lines(caplog)) == journey.turn_seq == LOST_CARD_TURNS
    assert sent == []  # nothing went through the broker
    effects = list(CoreEffect.objects.values_list("idempotency_key", flat=True))
    assert len(effects) == len(set(effects)) > 0


@pytest.mark.django_db(transaction=True)
def test_without_time_left_the_next_turn_goes_through_the_broker(agent, sent, budget, caplog):
    budget(0)
    caplog.set_level(logging.INFO, logger="handoff.runtime")
    journey = start()
    sent.clear()

    assert run_task(journey) == "continued"

    assert turn_lines(caplog) == [(0, "continued")]
    assert sent == [(journey.pk, journey.epoch, 1)]


@pytest.mark.django_db(transaction=True)
def test_a_carried_turn_is_fenced_like_a_delivered_one(agent, sent, budget, supervisor, monkeypatch):
    """A person takes over between two carried turns: the next one finds the journey at the new
    epoch and is dropped, as a message delivered late would be."""
    budget(60)
    journey = start()
    sent.clear()
    original = runtime.run_turn

    def take_over_after_the_second_turn(journey_id, epoch, turn_seq, *, token):
        outcome = original(journey_id, epoch, turn_seq, token=token)
        if turn_seq == 1:
            journey_take_over(journey_id=journey_id, user=supervisor)
        return outcome

    monkeypatch.setattr(runtime, "run_turn", take_over_after_the_second_turn)

    assert run_task(journey) == "stale"

    journey.refresh_from_db()
    assert journey.controller_user == supervisor and journey.turn_seq == 2
    dropped = journey.events.get(kind=Event.Kind.TURN_DROPPED)
    assert dropped.data["turn"] == 2 and dropped.data["task_epoch"] == 0
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_a_pause_stops_the_carried_journey_at_its_next_turn(agent, sent, budget, admin_user, monkeypatch):
    """The stop button pressed between two carried turns: the next one is refused, nothing the
    agent proposes after the pause exists, and resuming sends the journey's turn again."""
    budget(60)
    journey = start()
    sent.clear()
    original = runtime.run_turn

    at_the_pause: dict[str, int] = {}

    def pause_after_the_second_turn(journey_id, epoch, turn_seq, *, token):
        outcome = original(journey_id, epoch, turn_seq, token=token)
        if turn_seq == 1:
            agents_pause(user=admin_user, agent=agent, reason="checking a complaint")
            at_the_pause["proposals"] = journey.proposals.count()
            at_the_pause["effects"] = CoreEffect.objects.count()
        return outcome

    monkeypatch.setattr(runtime, "run_turn", pause_after_the_second_turn)

    assert run_task(journey) == "paused"

    journey.refresh_from_db()
    assert journey.turn_seq == 2 and journey.lease_token == ""
    assert journey.proposals.count() == at_the_pause["proposals"] > 0
    assert CoreEffect.objects.count() == at_the_pause["effects"]
    assert sent == []
    agents_resume(user=admin_user, agent=agent)
    assert sent == [(journey.pk, journey.epoch, 2)]


@pytest.mark.django_db(transaction=True)
def test_the_redelivered_message_takes_up_the_turn_its_dead_process_was_carrying(agent, sent, budget):
    """The process died in the middle of turn 3, carried on from message-7's turn 0: the lease
    is still live. Message-7 comes again: its own turn is done, so it runs turn 3 under that
    lease and carries the journey to its end; another message finds the lease held."""
    budget(0)
    journey = start()
    for turn in range(3):
        journey.refresh_from_db()
        run_task(journey, message=f"earlier-{turn}")
    journey.refresh_from_db()
    assert journey.turn_seq == 3
    # Turn 3 began in message-7's run and its process died: the lease it took is still live.
    now = timezone.now()
    taken = lifecycle.begin_turn_at_once(
        journey.pk,
        epoch=journey.epoch,
        turn_seq=3,
        token="message-7+3",
        now=now,
        until=now + timedelta(minutes=5),
        max_starts=3,
        max_turns=60,
    )
    assert taken is not None
    sent.clear()

    assert run_task(journey, message="someone-else", turn=0) == "duplicate"
    journey.refresh_from_db()
    assert journey.turn_seq == 3 and journey.lease_token == "message-7+3"

    budget(60)
    assert run_task(journey, message="message-7", turn=0) == "completed"
    journey.refresh_from_db()
    assert journey.status == Journey.Status.COMPLETED
    assert journey.turn_seq == LOST_CARD_TURNS
    effects = list(CoreEffect.objects.values_list("idempotency_key", flat=True))
    assert len(effects) == len(set(effects))
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_a_carried_turn_the_database_failed_goes_through_the_broker(agent, sent, budget, monkeypatch, caplog):
    budget(60)
    caplog.set_level(logging.INFO, logger="handoff.runtime")
    journey = start()
    sent.clear()
    original = runtime.run_turn

    def database_gone_on_the_second_turn(journey_id, epoch, turn_seq, *, token):
        if turn_seq == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return original(journey_id, epoch, turn_seq, token=token)

    monkeypatch.setattr(runtime, "run_turn", database_gone_on_the_second_turn)

    # The task that carried it ends well (its own turn landed); the failed turn is sent, to be
    # retried with back-off as any delivered turn is.
    assert run_task(journey) == "continued"
    assert turn_lines(caplog) == [(0, "continued"), (1, "database-error")]
    assert sent == [(journey.pk, journey.epoch, 1)]


def test_only_the_task_s_own_journey_is_carried(sent):
    """Another journey's turn scheduled inside a task (a linked journey opened, say) is sent."""
    carry = tasks._Carry(journey_id=1)
    reset = tasks._carrying.set(carry)
    try:
        tasks.send_turn((2, 0, 0))
        tasks.send_turn((1, 0, 4), countdown=2.0)  # a back-off: the broker keeps the timer
        tasks.send_turn((1, 0, 5))
        tasks.send_turn((1, 0, 6))  # one turn at a time is carried
    finally:
        tasks._carrying.reset(reset)
    assert sent == [(2, 0, 0), (1, 0, 4), (1, 0, 6)]
    assert carry.next == (1, 0, 5)


@pytest.mark.worker
def test_the_worker_runs_journeys_in_fewer_tasks_than_turns(celery_worker, agent, budget):
    budget(30)  # a loaded machine's slow turns must not use the time up
    tasks_run: list[str] = []

    def count(sender=None, **kwargs):
        if sender is tasks.run_step:
            tasks_run.append(kwargs["task_id"])

    task_prerun.connect(count, weak=False)
    try:
        journeys = [start(customer=f"CUST-0000{n}") for n in (4, 5, 6)]
        finished = [drive_to_end(j.pk) for j in journeys]
    finally:
        task_prerun.disconnect(count)
    assert {j.status for j in finished} == {Journey.Status.COMPLETED}
    turns = sum(j.turn_seq for j in finished)
    assert turns == 3 * LOST_CARD_TURNS
    assert len(tasks_run) < turns
