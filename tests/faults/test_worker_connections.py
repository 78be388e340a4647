"""The worker keeps its database connections across turns, and a kept connection the server
dropped between turns is replaced before it is used (health check), not failed on."""

from __future__ import annotations

import time

import psycopg
import pytest

from journeys.models import Agent, Event

from .conftest import suite_database_url, wait_until
from .helpers import all_finished, assert_each_effect_once, describe, live_count, start_journeys

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.timeout(300)]

JOURNEYS = 6
WORKER_APP = "handoff-kept-connections"


def worker_backends(url: str, dbname: str) -> list[tuple[int, bool]]:
    """(pid, idle between transactions) of every worker backend connected now."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, xact_start IS NULL FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [dbname, WORKER_APP],
        ).fetchall()


def terminate(url: str, pids: list[int]) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return sum(
            1 for (ok,) in conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
        )


def test_worker_keeps_connections_and_replaces_dropped_ones(
    transactional_db, demo, processes, private_redis, fault_queue
):
    Agent.objects.filter(name="Scripted agent").update(config={"think_seconds": 0.05})
    processes.env.update({"DATABASE_URL": suite_database_url(WORKER_APP), "CELERY_BROKER_URL": private_redis.url})
    processes.worker(fault_queue, concurrency=2)
    ids = start_journeys(processes, JOURNEYS)

    url = suite_database_url()
    dbname = url.rsplit("/", 1)[1]
    seen: set[int] = set()
    deadline = time.monotonic() + 150
    while not all_finished(ids) and time.monotonic() < deadline:
        seen.update(pid for pid, _ in worker_backends(url, dbname))
        time.sleep(0.02)
    wait_until(lambda: all_finished(ids), 5, f"{live_count(ids)} journeys never finished:\n" + describe(ids))
    turns = Event.objects.filter(journey_id__in=ids, kind=Event.Kind.STEP_STARTED).count()
    assert turns >= 3 * JOURNEYS
    # Two pool processes (beat's sweeps run in them too): a handful of backends served every
    # turn, where a connection per task would have shown dozens.
    assert 1 <= len(seen) <= 4, f"{len(seen)} worker backends for {turns} steps"

    # The worker is between tasks: its kept connections are idle. The server drops them all.
    kept = [pid for pid, idle in worker_backends(url, dbname) if idle]
    assert kept, "the worker kept no connection between tasks"
    assert terminate(url, kept) == len(kept)
    more = start_journeys(processes, JOURNEYS)
    wait_until(lambda: all_finished(more), 150, f"{live_count(more)} journeys never finished:\n" + describe(more))

    # The dropped connections were found dead before use and replaced: no turn failed on them.
    assert_each_effect_once(ids + more)
    assert not Event.objects.filter(journey_id__in=ids + more, kind=Event.Kind.TURN_RETRY).exists()
    assert "OperationalError" not in processes.log_tail(400), processes.log_tail(400)
    assert not {pid for pid, _ in worker_backends(url, dbname)} & set(kept)
