"""kill -9 a worker under load, twice in a row: every journey completes, each effect once."""

from __future__ import annotations

import pytest

from journeys.models import Agent, Journey

from .conftest import suite_database_url, wait_until
from .helpers import all_finished, assert_each_effect_once, describe, live_count, start_journeys

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.timeout(300)]

JOURNEYS = 20


def turns_taken(ids: list[int]) -> int:
    return sum(Journey.objects.filter(pk__in=ids).values_list("turn_seq", flat=True))


def turns_in_flight(ids: list[int]) -> int:
    return Journey.objects.filter(pk__in=ids, lease_until__isnull=False).count()


def test_worker_killed_twice_under_load_completes_every_journey_once(
    transactional_db, demo, processes, private_redis, fault_queue
):
    Agent.objects.filter(name="Scripted agent").update(config={"think_seconds": 0.1})
    processes.env.update({"DATABASE_URL": suite_database_url(), "CELERY_BROKER_URL": private_redis.url})
    worker = processes.worker(fault_queue, concurrency=2)
    ids = start_journeys(processes, JOURNEYS)

    for kill in (1, 2):
        progress = turns_taken(ids)
        # Kill while a turn is in flight (a lease is held), after the worker made some progress.
        wait_until(
            lambda progress=progress: turns_taken(ids) >= progress + 4 and turns_in_flight(ids),
            60,
            f"worker {kill} made no progress before the kill:\n" + processes.log_tail(),
            interval=0.02,
        )
        processes.kill(worker)
        live = live_count(ids)
        assert live > 0, f"every journey finished before kill {kill}: nothing was tested"
        worker = processes.worker(fault_queue, concurrency=2)

    wait_until(
        lambda: all_finished(ids),
        150,
        f"{live_count(ids)} journeys never finished after two kills:\n" + describe(ids) + processes.log_tail(),
        interval=0.3,
    )
    assert_each_effect_once(ids)
