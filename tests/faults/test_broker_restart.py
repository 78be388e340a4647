"""The broker restarts while journeys run: nothing is lost, work resumes by itself.

The private Redis keeps nothing across the restart (no persistence), so every queued and
unacknowledged turn is gone with it; the sweeper (beat, in the worker process) must find every
journey whose turn is due and send it again.
"""

from __future__ import annotations

import time

import pytest

from journeys.models import Agent, Journey

from .conftest import suite_database_url, wait_until
from .helpers import all_finished, assert_each_effect_once, describe, live_count, start_journeys

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.timeout(300)]

JOURNEYS = 10


def test_redis_restart_mid_journeys_loses_nothing(transactional_db, demo, processes, private_redis, fault_queue):
    Agent.objects.filter(name="Scripted agent").update(config={"think_seconds": 0.3})
    processes.env.update({"DATABASE_URL": suite_database_url(), "CELERY_BROKER_URL": private_redis.url})
    processes.worker(fault_queue, concurrency=2)
    ids = start_journeys(processes, JOURNEYS)

    # Restart once the work is well under way but far from done.
    wait_until(
        lambda: sum(Journey.objects.filter(pk__in=ids).values_list("turn_seq", flat=True)) >= JOURNEYS,
        60,
        "the worker never got going:\n" + processes.log_tail(),
    )
    private_redis.stop()
    in_flight = live_count(ids)
    assert in_flight > 0, "every journey finished before the broker went down: nothing was tested"
    time.sleep(2.0)  # the broker stays down a while; workers and beat keep retrying
    assert live_count(ids) == in_flight or live_count(ids) < in_flight  # visible, never vanished
    assert Journey.objects.filter(pk__in=ids).count() == JOURNEYS
    private_redis.start()

    wait_until(
        lambda: all_finished(ids),
        150,
        f"{live_count(ids)} of the {in_flight} journeys in flight at the restart never finished:\n"
        + describe(ids)
        + processes.log_tail(),
        interval=0.3,
    )
    assert_each_effect_once(ids)
