"""``journeys.db``: ``insert_rows`` writes exactly what ``bulk_create`` writes, with the ids in order;
``update_if`` what the ORM's conditional ``update`` writes."""

from __future__ import annotations

from decimal import Decimal

from journeys import events
from journeys.db import insert_rows
from journeys.models import Event
from journeys.services import journey_start
from review.audit.chain import audit_prepare
from review.models import AuditRecord


def columns(model, pks):
    rows = {row.pop("id"): row for row in model.objects.filter(pk__in=pks).values()}
    return [rows[pk] for pk in pks]


def test_events_written_by_insert_rows_equal_those_bulk_create_writes(agent):
    journey = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"})

    def batch():
        return [
            events._event(journey, Event.Kind.AGENT_NOTE, "Ünïcode — “quotes” 'and' %s", actor_agent=agent),
            events._event(journey, Event.Kind.STEP_FINISHED, "a", data={"n": 1.5, "list": [None, True], "é": "x"}),
            events._event(journey, Event.Kind.EXCEPTION, "b", data={"amount": str(Decimal("10.10"))}, step=""),
        ]

    mine, theirs = batch(), batch()
    for a, b in zip(mine, theirs, strict=True):
        b.at = a.at
    insert_rows(mine)
    Event.objects.bulk_create(theirs)
    ids = [event.pk for event in mine]
    assert ids == sorted(ids) and all(not event._state.adding for event in mine)
    assert columns(Event, ids) == columns(Event, [event.pk for event in theirs])
    assert [e.summary for e in Event.objects.filter(pk__in=ids).order_by("pk")] == [e.summary for e in mine]


def test_audit_records_written_by_insert_rows_equal_those_bulk_create_writes(db):
    def batch(chain):
        records = [
            audit_prepare(chain=chain, kind="note", summary=f"r{n}", payload={"n": n, "x": [1, "é", None]})
            for n in range(2)
        ]
        for seq, record in enumerate(records, start=1):
            record.seq, record.prev_hash, record.hash = seq, "0" * 64, f"{seq:064d}"
        return records

    mine, theirs = batch("test:mine"), batch("test:theirs")
    for a, b in zip(mine, theirs, strict=True):
        b.at, b.payload_salt, b.payload_sha256 = a.at, a.payload_salt, a.payload_sha256
    insert_rows(mine)
    AuditRecord.objects.bulk_create(theirs)
    strip = lambda rows: [{k: v for k, v in row.items() if k != "chain"} for row in rows]  # noqa: E731
    assert strip(columns(AuditRecord, [r.pk for r in mine])) == strip(columns(AuditRecord, [r.pk for r in theirs]))
    assert insert_rows([]) is None


def test_update_if_writes_what_the_orm_update_writes_and_only_from_the_given_states(agent, supervisor):
    from django.utils import timezone

    from journeys.db import update_if
    from journeys.models import Journey

    journey = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"})
    twin = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"})
    at = timezone.now()
    values = {"context": {"facts": {"é": [1, None]}}, "controller_user": supervisor, "state_changed_at": at}
    values["status"] = Journey.Status.HUMAN
    assert update_if(Journey, journey.pk, values, field="status", among=[Journey.Status.HUMAN]) == 0
    assert update_if(Journey, journey.pk, values, field="status", among=[Journey.Status.RUNNING, "x"]) == 1
    Journey.objects.filter(pk=twin.pk, status__in=[Journey.Status.RUNNING, "x"]).update(**values)
    fields = ("context", "controller_user_id", "state_changed_at", "status")
    mine = Journey.objects.filter(pk=journey.pk).values(*fields).get()
    assert mine == Journey.objects.filter(pk=twin.pk).values(*fields).get()
    assert mine["controller_user_id"] == supervisor.pk and mine["context"] == {"facts": {"é": [1, None]}}


def test_insert_rows_writes_many_rows_in_batches_with_their_ids_in_order(agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from journeys.db import INSERT_BATCH

    journey = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"})
    many = [events._event(journey, Event.Kind.AGENT_NOTE, f"n{n}") for n in range(INSERT_BATCH * 2 + 5)]
    with CaptureQueriesContext(connection) as captured:
        insert_rows(many)
    assert len(captured.captured_queries) == 3
    ids = [event.pk for event in many]
    assert ids == sorted(ids) and len(set(ids)) == len(many)
    assert list(Event.objects.filter(pk__in=ids).order_by("pk").values_list("summary", flat=True)) == [
        f"n{n}" for n in range(len(many))
    ]
