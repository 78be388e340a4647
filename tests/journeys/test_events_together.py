"""A phase of an agent's turn writes its events together: one INSERT at the block's end, in the
order recorded, with the listeners' work (audit records, webhook deliveries, cases) made from
what was true when each event was recorded."""

from __future__ import annotations

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from api.models import WebhookDelivery
from api.webhooks import subscription_create
from journeys import events, runtime
from journeys.models import Event, Journey
from journeys.services import journey_start
from review.models import AuditRecord, ExceptionCase


def start(definition: str = "lost_card") -> Journey:
    return journey_start(definition=definition, customer_ref="CUST-00002", request={"reason": "lost"})


def event_inserts(queries) -> int:
    return sum(q["sql"].startswith('INSERT INTO "journeys_event"') for q in queries)


def test_a_phase_inserts_its_events_once_in_order_and_audits_each_with_its_id(agent):
    journey = start()
    newest = Event.objects.order_by("-pk").values_list("pk", flat=True).first()
    with CaptureQueriesContext(connection) as captured, transaction.atomic(), events.together():
        recorded = [events.record(journey, Event.Kind.AGENT_NOTE, f"note {n}") for n in range(3)]
        recorded += events.record_many(
            journey,
            [{"kind": Event.Kind.STEP_FINISHED, "summary": "a"}, {"kind": Event.Kind.STEP_STARTED, "summary": "b"}],
        )
        assert all(event.pk is None for event in recorded)  # not written yet
    assert event_inserts(captured.captured_queries) == 1
    ids = [event.pk for event in recorded]
    assert ids == sorted(ids) and ids[0] > newest
    assert list(journey.events.filter(pk__gt=newest).values_list("summary", flat=True)) == [
        "note 0",
        "note 1",
        "note 2",
        "a",
        "b",
    ]
    audited = dict(AuditRecord.objects.filter(event_id__in=ids).values_list("event_id", "summary"))
    assert audited == {event.pk: event.summary for event in recorded}


def test_an_event_recorded_in_a_savepoint_that_rolled_back_is_not_written_audited_or_sent(agent, admin_user):
    subscription_create(name="all", url="http://127.0.0.1:9/", events=["decision.made"], agent=None, user=admin_user)
    journey = start()
    with transaction.atomic(), events.together():
        kept = events.record(journey, Event.Kind.ACTION_DECIDED, "kept")
        try:
            with transaction.atomic():
                events.record(journey, Event.Kind.ACTION_DECIDED, "rolled back")
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        after = events.record(journey, Event.Kind.ACTION_DECIDED, "after")
    assert list(journey.events.filter(kind=Event.Kind.ACTION_DECIDED).values_list("summary", flat=True)) == [
        "kept",
        "after",
    ]
    assert not AuditRecord.objects.filter(summary="rolled back").exists()
    sources = set(WebhookDelivery.objects.values_list("source", flat=True))
    assert sources == {f"event:{kept.pk}", f"event:{after.pk}"}


def test_a_webhook_names_the_events_id_and_the_journey_as_it_was_when_the_event_was_recorded(agent, admin_user):
    subscription_create(
        name="all",
        url="http://127.0.0.1:9/",
        events=["decision.made", "journey.completed"],
        agent=None,
        user=admin_user,
    )
    journey = start()
    with transaction.atomic(), events.together():
        decided = events.record(journey, Event.Kind.ACTION_DECIDED, "decided while running")
        journey.status = Journey.Status.COMPLETED  # what the block does next (no save: not needed here)
        completed = events.record(journey, Event.Kind.COMPLETED, "done")
    by_event = {d.source: d.payload["data"] for d in WebhookDelivery.objects.all()}
    assert by_event[f"event:{decided.pk}"]["event"]["id"] == decided.pk
    assert by_event[f"event:{decided.pk}"]["status"] == "running"
    assert by_event[f"event:{completed.pk}"]["status"] == "completed"


def test_a_case_opened_inside_a_turn_points_at_its_written_event(agent, monkeypatch):
    """The exception case needs its event in the database: the block's events are written first,
    and still only once."""
    from demo.agent import ScriptedAgent

    monkeypatch.setattr(ScriptedAgent, "next_turn", lambda self, snapshot: 1 / 0)
    journey = start()
    journey.refresh_from_db()
    with CaptureQueriesContext(connection) as captured:
        assert runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token="t") == "fallback"
    case = ExceptionCase.objects.get(journey=journey)
    assert case.trigger_event.kind == Event.Kind.EXCEPTION
    assert case.trigger_event.journey_id == journey.pk
    written = journey.events.order_by("pk")
    assert [e.pk for e in written] == sorted({e.pk for e in written})
    assert AuditRecord.objects.filter(event_id=case.trigger_event_id).exists()
    assert event_inserts(captured.captured_queries) <= 2  # before the case, then the rest


def test_an_event_written_early_inside_a_savepoint_that_rolls_back_is_written_again(agent):
    """The exception case writes the phase's events at once (``flush``); when that happens
    inside a savepoint that then rolls back, the events recorded before the savepoint are still
    part of the phase: they are written again at its end, with their audit records."""
    journey = start()
    with transaction.atomic(), events.together():
        before = events.record(journey, Event.Kind.AGENT_NOTE, "recorded before the savepoint")
        try:
            with transaction.atomic():
                events.record(journey, Event.Kind.EXCEPTION, "opens a case", data={"kind": "agent_error"})
                assert before.pk is not None  # written early, inside the savepoint
                raise RuntimeError("roll the savepoint back, and the early write with it")
        except RuntimeError:
            pass
    kept = list(journey.events.filter(kind__in=[Event.Kind.AGENT_NOTE, Event.Kind.EXCEPTION]))
    assert [(e.pk, e.summary) for e in kept] == [(before.pk, "recorded before the savepoint")]
    assert list(
        AuditRecord.objects.filter(journey_id=journey.pk, kind="agent_note").values_list("event_id", flat=True)
    ) == [before.pk]
    assert not AuditRecord.objects.filter(journey_id=journey.pk, summary="opens a case").exists()
    assert not ExceptionCase.objects.filter(journey=journey).exists()
