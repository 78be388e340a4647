"""Fewer round trips to the database, the same guarantees.

- ``journeys.db.run_statements`` sends its statements in one pipeline: each still a statement of
  its own, in order, each one's rows returned; an error surfaces as Django's own; the BEGIN of a
  transaction that starts with them travels with them; a query log shows one round trip.
- The statements of the connection are prepared once they have run a few times
  (``DATABASE_PREPARED_STATEMENTS``).
- The simulated core bank claims an idempotency key before it runs the effect: an effect runs
  once whoever asks at the same time, and a claim whose effect did not run is taken back.
"""

from __future__ import annotations

import threading

import pytest
from django.db import DataError, OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from psycopg import pq

from demo.corebank import SimulatedCoreBank
from demo.models import CoreCard, CoreEffect
from journeys import runtime
from journeys.corebank.base import CoreBankUnavailable
from journeys.db import run_statements
from journeys.models import Event, ProposedAction
from journeys.services import journey_start


@pytest.mark.django_db
def test_statements_sent_together_each_return_their_rows_in_order():
    statements = [("SELECT %s::int", [1]), ("SELECT g FROM generate_series(1, %s) g", [3]), ("SELECT %s", ["x"])]
    with CaptureQueriesContext(connection) as captured:
        rows = run_statements(statements)
    assert rows == [[(1,)], [(1,), (2,), (3,)], [("x",)]]
    (logged,) = captured.captured_queries
    assert logged["pipelined"] is True
    assert logged["sql"] == "SELECT 1::int; SELECT g FROM generate_series(1, 3) g; SELECT 'x'"


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_starts_with_them_sends_its_begin_with_them():
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        run_statements([("SELECT 1", []), ("SELECT 2", [])])
        run_statements([("SELECT 3", []), ("SELECT 4", [])])
    first, second = [q for q in captured.captured_queries if q.get("pipelined")]
    assert first["with_begin"] is True
    assert second["with_begin"] is False


@pytest.mark.django_db(transaction=True)
def test_an_error_in_the_pipeline_is_djangos_and_rolls_back_the_transaction(demo):
    card = CoreCard.objects.order_by("pk").first()
    with pytest.raises(DataError), transaction.atomic():
        CoreCard.objects.filter(pk=card.pk).update(blocked_reason="written before the error")
        run_statements([("SELECT 1", []), ("SELECT 1 / %s", [0]), ("SELECT 3", [])])
    card.refresh_from_db()
    assert card.blocked_reason != "written before the error"
    # The connection is usable again, outside a pipeline.
    assert run_statements([("SELECT 5", []), ("SELECT 6", [])]) == [[(5,)], [(6,)]]
    assert connection.connection.pgconn.pipeline_status == pq.PipelineStatus.OFF


@pytest.mark.django_db(transaction=True)
def test_a_statement_run_again_and_again_is_prepared_on_the_server_unless_switched_off():
    """Prepared after five runs on a connection; with ``DATABASE_PREPARED_STATEMENTS=false``
    (behind a pooler that cannot keep them) never."""
    switched_on = connection.settings_dict["OPTIONS"].get("prepare_threshold") is not None
    connection.ensure_connection()
    for _ in range(6):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM journeys_coreeffect WHERE action = %s", ["prepared?"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("journeys_coreeffect" in sql and "prepared?" not in sql for sql in prepared) == switched_on


# --- the simulated core bank's idempotency -------------------------------------------------


def _block(key: str) -> dict:
    card = CoreCard.objects.order_by("pk").first()
    return SimulatedCoreBank().block_card(card=card.token, reason="lost", idempotency_key=key)


@pytest.mark.django_db
def test_an_effect_asked_twice_with_one_key_runs_once_and_answers_the_same(demo):
    first = _block("key-twice")
    second = _block("key-twice")
    assert first == second and first["blocked"] is True
    assert CoreEffect.objects.filter(idempotency_key="key-twice").count() == 1
    assert CoreEffect.objects.get(idempotency_key="key-twice").result == first


@pytest.mark.django_db
def test_a_claim_whose_effect_did_not_run_is_taken_back(demo, monkeypatch):
    monkeypatch.setenv("HANDOFF_CORE_FAILURE_RATE", "1")
    with pytest.raises(CoreBankUnavailable):
        _block("key-outage")
    assert not CoreEffect.objects.filter(idempotency_key="key-outage").exists()
    monkeypatch.setenv("HANDOFF_CORE_FAILURE_RATE", "0")
    assert _block("key-outage")["blocked"] is True
    assert CoreEffect.objects.filter(idempotency_key="key-outage").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_callers_with_one_key_at_once_see_one_effect(demo):
    """The second caller's claim waits for the first's transaction, then finds the effect done
    and answers its result; the effect ran once."""
    ran: list[str] = []
    first_claimed = threading.Event()
    answers: dict[str, dict] = {}
    card = CoreCard.objects.order_by("pk").first()

    def call(name: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                bank = SimulatedCoreBank()

                def effect() -> dict:
                    ran.append(name)
                    return {"by": name}

                answers[name] = bank._once("key-race", "block_card", {"card": card.token}, effect)
                if hold:
                    first_claimed.set()
                    threading.Event().wait(0.5)  # the second caller is waiting on the claim meanwhile
        finally:
            connections.close_all()

    first = threading.Thread(target=call, args=("first", True))
    first.start()
    assert first_claimed.wait(10)
    second = threading.Thread(target=call, args=("second", False))
    second.start()
    first.join(10)
    second.join(10)
    assert ran == ["first"]
    assert answers == {"first": {"by": "first"}, "second": {"by": "first"}}
    assert CoreEffect.objects.filter(idempotency_key="key-race").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_under_the_pipeline_is_djangos_operational_error_and_is_replaced():
    """The server ends the connection (a restart, ``pg_terminate_backend``): the pipeline raises
    Django's ``OperationalError``, as any statement would, and the connection is replaced at the
    next check, as a worker does before each task."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    killer = connections["default"].__class__(connection.settings_dict, alias="killer")
    try:
        with killer.cursor() as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        killer.close()
    with pytest.raises(OperationalError):
        run_statements([("SELECT 1", []), ("SELECT 2", [])])
    connection.close_if_unusable_or_obsolete()
    assert run_statements([("SELECT 1", []), ("SELECT 2", [])]) == [[(1,)], [(2,)]]


@pytest.mark.django_db
def test_a_proposal_is_written_once_already_decided(agent):
    """The policy judges the proposal before it is written, so its INSERT carries the decision:
    a proposing turn writes the proposal with one INSERT, and updates it only when it executes."""
    journey = journey_start(definition="lost_card", customer_ref="CUST-00003", request={"reason": "lost"})
    with CaptureQueriesContext(connection) as captured:
        outcome = runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token="t")
    assert outcome == "continued"
    writes = [
        q["sql"].split()[0]
        for q in captured.captured_queries
        if not q.get("pipelined") and '"journeys_proposedaction"' in q["sql"].split("WHERE")[0]
    ]
    assert writes == ["INSERT", "UPDATE"]
    proposal = journey.proposals.get()
    assert proposal.status == ProposedAction.Status.EXECUTED
    assert proposal.decision_effect == ProposedAction.Effect.ALLOW and proposal.decided_at is not None
    kinds = list(journey.events.filter(proposal=proposal).order_by("pk").values_list("kind", flat=True))
    assert kinds[:2] == [Event.Kind.ACTION_PROPOSED, Event.Kind.ACTION_DECIDED]
