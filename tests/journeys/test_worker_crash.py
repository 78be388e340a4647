"""Nothing lost, nothing twice: real worker processes killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from console.celery import app as celery_app
from demo.models import CoreEffect
from journeys.models import Agent, Event, Journey
from journeys.services import journey_start

from ..conftest import wait_for

pytestmark = [pytest.mark.worker]
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def crash_queue(transactional_db, tmp_path) -> Iterator[dict]:
    """A queue of this test's own, so only the worker processes it starts consume it."""
    queue = f"handoff-crash-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": queue,
        "HANDOFF_VAR_DIR": str(tmp_path),
        "HANDOFF_STEP_LEASE_SECONDS": "2",
        "HANDOFF_SWEEP_SECONDS": "0.5",
        "HANDOFF_SWEEP_GRACE_SECONDS": "0.5",
        "HANDOFF_RETRY_BASE_SECONDS": "0.2",
        "C_FORCE_ROOT": "1",
    }
    procs: list[subprocess.Popen] = []

    def start_worker() -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "-B",
                "-Q",
                queue,
                "--concurrency=1",
                "--pool=prefork",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "-s",
                str(tmp_path / f"beat-{len(procs)}"),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield {"start_worker": start_worker}
    celery_app.conf.task_default_queue = previous
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_worker_killed_mid_step_loses_nothing_and_repeats_nothing(crash_queue, agent):
    Agent.objects.filter(pk=agent.pk).update(config={"think_seconds": 1.0})
    worker = crash_queue["start_worker"]()
    journey = journey_start(definition="lost_card", customer_ref="CUST-00004", request={"reason": "stolen"})

    # Wait until the worker is in the middle of an agent turn after the card was blocked.
    def mid_step() -> bool:
        j = Journey.objects.get(pk=journey.pk)
        return j.current_step == "review_activity" and j.lease_until is not None

    wait_for(mid_step, timeout=60, message="the worker never reached the middle of a step")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed_at = Journey.objects.get(pk=journey.pk)
    assert killed_at.status == Journey.Status.RUNNING  # visible, not lost

    crash_queue["start_worker"]()
    finished = wait_for(
        lambda: (j := Journey.objects.get(pk=journey.pk)).status != Journey.Status.RUNNING and j,
        timeout=90,
        message="the journey did not finish after a new worker started",
    )
    assert finished.status == Journey.Status.COMPLETED
    effects = list(
        CoreEffect.objects.filter(idempotency_key__startswith=f"j{journey.pk}-").values_list("action", flat=True)
    )
    assert sorted(effects) == sorted(set(effects)), "an action ran twice"
    assert effects.count("block_card") == 1 and effects.count("order_card") == 1
    assert finished.proposals.filter(action_type__key="block_card").count() == 1


def test_a_step_that_keeps_killing_its_worker_is_quarantined(crash_queue, agent):
    Agent.objects.filter(pk=agent.pk).update(config={"crash_steps": ["block_card"]})
    crash_queue["start_worker"]()
    journey = journey_start(definition="lost_card", customer_ref="CUST-00005", request={"reason": "lost"})

    quarantined = wait_for(
        lambda: (j := Journey.objects.get(pk=journey.pk)).status == Journey.Status.HUMAN and j,
        timeout=120,
        message="the poisonous step was not quarantined",
    )
    assert quarantined.current_step == "block_card"
    assert quarantined.events.filter(kind=Event.Kind.TURN_QUARANTINED).count() == 1
    assert "quarantined" in quarantined.needs_person_reason
    assert not CoreEffect.objects.filter(idempotency_key__startswith=f"j{journey.pk}-", action="block_card").exists()
