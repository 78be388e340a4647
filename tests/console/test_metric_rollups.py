"""The incremental roll-ups always equal a full recomputation from the record."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from console.metrics.rollups import rollup_rebuild, rollup_refresh, rollup_state
from console.metrics.tasks import refresh_metrics
from console.models import DailyRollup, DecisionFact, JourneyFact, StepFact
from demo.simulator import Simulator
from journeys.models import ActionType, Agent, Event, Journey, JourneyDefinition, ProposedAction

from ..conftest import drive_to_end, wait_for


def snapshot() -> dict[str, list]:
    return {
        "journeys": sorted(
            JourneyFact.objects.values_list(
                "journey_id",
                "definition_id",
                "day",
                "status",
                "resolution_seconds",
                "person_involved",
                "contained",
                "escalated",
                "taken_over",
                "errored",
                "abandoned",
                "abandoned_step",
                "repeat_contact",
                "first_contact_resolved",
                "exceptions",
            )
        ),
        "steps": sorted(StepFact.objects.values_list("journey_id", "step", "started_at", "seconds")),
        "decisions": sorted(
            DecisionFact.objects.values_list(
                "proposal_id",
                "outcome",
                "edited",
                "approver_id",
                "amount",
                "day",
                "latency_seconds",
                "rule",
            )
        ),
        "days": sorted(DailyRollup.objects.values_list("definition_id", "day", *DailyRollup.COUNTERS)),
    }


def _journey(customer: str, start: datetime, status: str) -> Journey:
    definition = JourneyDefinition.objects.get(key="fee_refund")
    return Journey.objects.create(
        definition=definition,
        version=definition.current_version(),
        customer_ref=customer,
        status=status,
        current_step="verify_identity",
        created_at=start,
        finished_at=start + timedelta(minutes=5) if status != "running" else None,
        sla_deadline=start + timedelta(hours=1),
    )


def _event(journey: Journey, kind: str, when: datetime, **fields) -> Event:
    return Event.objects.create(
        journey=journey,
        kind=kind,
        at=when,
        summary=kind,
        actor_kind=fields.pop("actor_kind", Event.Actor.AGENT),
        **fields,
    )


@pytest.mark.django_db
def test_incremental_refreshes_equal_a_rebuild_as_the_record_grows(demo, supervisor2):
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    first = _journey("C9", start, Journey.Status.COMPLETED)
    _event(first, Event.Kind.STEP_STARTED, start, step="verify_identity")
    rollup_refresh()
    assert JourneyFact.objects.get(pk=first.pk).first_contact_resolved is True

    # The same customer comes back two days later: the first journey is no longer resolved at
    # first contact, although none of its own events changed.
    second = _journey("C9", start + timedelta(days=2), Journey.Status.RUNNING)
    _event(second, Event.Kind.STEP_STARTED, start + timedelta(days=2), step="verify_identity")
    rollup_refresh()
    assert JourneyFact.objects.get(pk=first.pk).first_contact_resolved is False
    assert JourneyFact.objects.get(pk=second.pk).repeat_contact is True

    # Later events on a journey already counted: a person decides, the journey finishes.
    proposal = ProposedAction.objects.create(
        journey=second,
        action_type=ActionType.objects.get(key="issue_refund"),
        step="refund",
        params={"account": "A", "amount": "70.00", "reason": "fee reversal"},
        idempotency_key="roll-1",
        status=ProposedAction.Status.APPROVED,
        decision_rule="one approval",
        created_at=start + timedelta(days=2),
    )
    _event(
        second,
        Event.Kind.STEP_FINISHED,
        start + timedelta(days=2, minutes=1),
        step="verify_identity",
    )
    _event(
        second,
        Event.Kind.ACTION_APPROVED,
        start + timedelta(days=3),
        proposal=proposal,
        actor_kind=Event.Actor.PERSON,
        actor_user=supervisor2,
        data={"partial": False, "edited": True},
    )
    Journey.objects.filter(pk=second.pk).update(status=Journey.Status.COMPLETED, finished_at=start + timedelta(days=3))
    _event(second, Event.Kind.COMPLETED, start + timedelta(days=3))
    rollup_refresh()
    incremental = snapshot()
    assert DailyRollup.objects.filter(day=(start + timedelta(days=3)).date(), edited_approvals=1).exists()

    rollup_rebuild()
    assert snapshot() == incremental
    assert rollup_state().last_event_id == Event.objects.latest("id").id


@pytest.mark.worker
def test_rollups_kept_while_journeys_run_equal_a_full_recomputation(celery_worker, agent):
    Agent.objects.filter(pk=agent.pk).update(config={"low_confidence_rate": 1.0})
    sim = Simulator(seed=11)
    journeys = []
    for definition, persona in [
        ("card_dispute", "cooperative"),
        ("lost_card", "cooperative"),
        ("fee_refund", "abandons"),
        ("card_dispute", "cooperative"),
    ]:
        journey = sim.open_journey(definition, persona=persona)
        journey.context["request"]["identity_ok"] = True
        Journey.objects.filter(pk=journey.pk).update(context=journey.context)
        journeys.append(journey)
    rollup_refresh()  # mid-run
    for journey in journeys:
        if journey.context["simulator"]["persona"] == "abandons":
            wait_for(
                lambda j=journey: _answer_as(sim, j),
                timeout=30,
                message="the customer never got to leave",
            )
        else:
            drive_to_end(journey.pk)
    # The beat task, run by the real worker.
    before = rollup_state().last_run_at
    refresh_metrics.delay()
    wait_for(
        lambda: rollup_state().last_run_at != before,
        timeout=20,
        message="refresh_metrics never ran",
    )
    incremental = snapshot()
    assert len(incremental["journeys"]) == len(journeys)
    rollup_rebuild()
    assert snapshot() == incremental


def _answer_as(sim: Simulator, journey: Journey) -> bool:
    from journeys.services import JourneyError, journey_customer_message

    # The customer may have been answered meanwhile; the next poll looks again.

    current = Journey.objects.get(pk=journey.pk)
    if current.status != Journey.Status.RUNNING:
        return True
    if current.waiting_on == Journey.WaitingOn.CUSTOMER:
        text, data, intent = sim.answer(current, "abandons")
        with contextlib.suppress(JourneyError):
            journey_customer_message(journey_id=current.pk, text=text, data=data, intent=intent)
    return False


def test_the_beat_schedule_runs_the_refresh_task():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "console.metrics.tasks.refresh_metrics" in tasks
    assert "console.metrics.tasks" in settings.CELERY_IMPORTS


@pytest.mark.django_db
def test_a_decision_without_an_actor_names_its_approver_in_the_data(demo, supervisor2):
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    journey = _journey("C7", start, Journey.Status.COMPLETED)
    proposal = ProposedAction.objects.create(
        journey=journey,
        action_type=ActionType.objects.get(key="issue_refund"),
        step="refund",
        params={"account": "A", "amount": "70.00", "reason": "fee reversal"},
        idempotency_key="roll-approver",
        status=ProposedAction.Status.REJECTED,
        created_at=start,
    )
    _event(
        journey,
        Event.Kind.ACTION_REJECTED,
        start + timedelta(seconds=9),
        proposal=proposal,
        actor_kind=Event.Actor.SYSTEM,
        data={"approver": "supervisor2", "reason": "no"},
    )
    rollup_refresh()
    fact = DecisionFact.objects.get(pk=proposal.pk)
    assert (fact.outcome, fact.approver, fact.latency_seconds) == ("rejected", supervisor2, 9)


def _python_rebuild() -> dict[str, list]:
    """The roll-ups recomputed journey by journey in Python (``refresh_journeys``)."""
    from console.metrics.rollups import refresh_days, refresh_journeys

    for model in (JourneyFact, StepFact, DecisionFact, DailyRollup):
        model.objects.all().delete()
    refresh_days(refresh_journeys(Journey.objects.values_list("pk", flat=True)))
    return snapshot()


@pytest.mark.django_db
def test_the_set_based_rebuild_equals_the_journey_by_journey_facts_on_awkward_records(demo, supervisor2):
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    refund = ActionType.objects.get(key="issue_refund")
    # Same customer, same start time: the tie is broken by id; a third one eight days later.
    twins = [_journey("C5", start, Journey.Status.COMPLETED) for _ in range(2)]
    late = _journey("C5", start + timedelta(days=8), Journey.Status.ABANDONED)
    failed = _journey("C6", start + timedelta(hours=1), Journey.Status.FAILED)
    running = _journey("C6", start + timedelta(days=6, hours=23), Journey.Status.RUNNING)
    first = twins[0]
    # A step started twice before it finished, finished twice, and one never finished.
    for minute, kind in enumerate(
        [Event.Kind.STEP_STARTED, Event.Kind.STEP_STARTED, Event.Kind.STEP_FINISHED, Event.Kind.STEP_FINISHED]
    ):
        _event(first, kind, start + timedelta(minutes=minute, microseconds=123_457), step="verify_identity")
    _event(first, Event.Kind.STEP_STARTED, start + timedelta(minutes=9), step="refund")
    _event(first, Event.Kind.ANNOTATION, start + timedelta(minutes=10), actor_kind=Event.Actor.PERSON)
    _event(twins[1], Event.Kind.MESSAGE_IN, start, actor_kind=Event.Actor.PERSON)
    _event(twins[1], Event.Kind.ACTION_EXPIRED, start, data={"outcome": "escalated"})
    _event(late, Event.Kind.ABANDONED, start + timedelta(days=8), step="find_fee", data={"step": ""})
    _event(late, Event.Kind.ABANDONED, start + timedelta(days=8, minutes=1), step="x", data={"step": "refund"})
    _event(failed, Event.Kind.ACTION_FAILED, start, data={"transient": True})
    _event(failed, Event.Kind.EXCEPTION, start)
    _event(failed, Event.Kind.EXCEPTION, start)
    _event(running, Event.Kind.ACTION_FAILED, start, data={"transient": 0})

    def proposal(journey: Journey, key: str, amount: object) -> ProposedAction:
        return ProposedAction.objects.create(
            journey=journey,
            action_type=refund,
            step="refund",
            params={"account": "A", "amount": amount, "reason": "r"},
            idempotency_key=key,
            status=ProposedAction.Status.APPROVED,
            decision_rule="one approval",
            created_at=start,
        )

    partial_then_whole = proposal(first, "p1", "70.005")
    _event(
        first,
        Event.Kind.ACTION_APPROVED,
        start + timedelta(minutes=1),
        proposal=partial_then_whole,
        actor_kind=Event.Actor.PERSON,
        actor_user=supervisor2,
        data={"partial": True, "edited": True},
    )
    _event(
        first,
        Event.Kind.ACTION_APPROVED,
        start + timedelta(minutes=2),
        proposal=partial_then_whole,
        data={"partial": False, "approver": "supervisor2"},
    )
    rejected_late = proposal(first, "p2", 12)
    _event(
        first,
        Event.Kind.ACTION_APPROVED,
        start + timedelta(minutes=3),
        proposal=rejected_late,
        actor_kind=Event.Actor.PERSON,
        actor_user=supervisor2,
    )
    _event(
        first,
        Event.Kind.ACTION_REJECTED,
        start + timedelta(minutes=4),
        proposal=rejected_late,
        data={"approver": "nobody-of-that-name"},
    )
    expired = proposal(twins[1], "p3", "not a number")
    _event(twins[1], Event.Kind.ACTION_EXPIRED, start + timedelta(days=1), proposal=expired)
    denied = proposal(failed, "p4", None)
    _event(failed, Event.Kind.ACTION_DECIDED, start, proposal=denied, data={"effect": "deny"})
    undecided = proposal(failed, "p5", "5")
    _event(failed, Event.Kind.ACTION_DECIDED, start, proposal=undecided, data={"effect": "allow"})

    rollup_rebuild()
    set_based = snapshot()
    assert len(set_based["decisions"]) == 4 and len(set_based["steps"]) == 3
    assert _python_rebuild() == set_based
