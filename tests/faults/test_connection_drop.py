"""A worker's database connection dies in the middle of a turn (pg_terminate_backend).

PostgreSQL rolls the turn's transaction back, the task fails with an OperationalError and is
retried (or, its retries spent, swept again once its lease runs out). The turn must be all or
nothing: no proposal without its events, no effect without its executed proposal, and the audit
chain still verifies.
"""

from __future__ import annotations

import time
from collections import Counter

import psycopg
import pytest

from demo.models import CoreEffect
from journeys.models import Agent, Event, ProposedAction
from review.audit.verify import audit_verify

from .conftest import suite_database_url, wait_until
from .helpers import all_finished, assert_each_effect_once, describe, live_count, start_journeys

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.timeout(300)]

JOURNEYS = 8
WORKER_APP = "handoff-fault-worker"


def terminate_worker_transactions(url: str, dbname: str) -> int:
    """Kill every worker backend that is inside a transaction right now; how many were hit."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND xact_start IS NOT NULL",
            [dbname, WORKER_APP],
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def test_connection_killed_mid_turn_is_all_or_nothing(transactional_db, demo, processes, private_redis, fault_queue):
    Agent.objects.filter(name="Scripted agent").update(config={"think_seconds": 0.1})
    processes.env.update({"DATABASE_URL": suite_database_url(WORKER_APP), "CELERY_BROKER_URL": private_redis.url})
    processes.worker(fault_queue, concurrency=2)
    ids = start_journeys(processes, JOURNEYS)

    url = suite_database_url()
    dbname = url.rsplit("/", 1)[1]
    killed = 0
    deadline = time.monotonic() + 20
    # Hit turns in flight until enough of them died mid-transaction (or the journeys ran out).
    while killed < 6 and time.monotonic() < deadline and not all_finished(ids):
        killed += terminate_worker_transactions(url, dbname)
        time.sleep(0.01)
    assert killed >= 1, "no worker transaction was caught in flight: nothing was tested"

    wait_until(
        lambda: all_finished(ids),
        150,
        f"{live_count(ids)} journeys never finished after {killed} dropped connections:\n"
        + describe(ids)
        + processes.log_tail(),
        interval=0.3,
    )
    assert_each_effect_once(ids)

    # All or nothing: every executed proposal that changes something has its effect and one "executed" event, every
    # effect belongs to an executed proposal, every proposal has exactly one "proposed" event.
    for journey_id in ids:
        proposals = ProposedAction.objects.filter(journey_id=journey_id)
        executed = set(
            proposals.filter(status="executed", action_type__is_read_only=False).values_list(
                "idempotency_key", flat=True
            )
        )
        effects = set(
            CoreEffect.objects.filter(idempotency_key__startswith=f"j{journey_id}-").values_list(
                "idempotency_key", flat=True
            )
        )
        assert effects == executed, f"J-{journey_id}: effects {effects} vs executed proposals {executed}"
        events = Counter(Event.objects.filter(journey_id=journey_id).values_list("kind", flat=True))
        assert events[Event.Kind.ACTION_PROPOSED] == proposals.count()
        assert events[Event.Kind.ACTION_EXECUTED] == proposals.filter(status="executed").count()
    result = audit_verify()
    assert result.ok, result.summary()
