"""The runtime on RabbitMQ: a journey started and run entirely over AMQP by real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from journeys.models import Journey

from ..conftest import wait_for
from .test_worker_crash import database_url

pytestmark = [pytest.mark.worker]
ROOT = Path(__file__).resolve().parents[2]
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def amqp_reachable() -> bool:
    parts = urlsplit(AMQP_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=3):
            return True
    except OSError:
        return False


def test_journey_runs_to_completion_over_rabbitmq(transactional_db, agent, tmp_path):
    if not amqp_reachable():
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL}; start it or set AMQP_URL.")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": AMQP_URL,
        "CELERY_QUEUE": f"handoff-amqp-{uuid.uuid4().hex[:8]}",
        "HANDOFF_VAR_DIR": str(tmp_path),
        "C_FORCE_ROOT": "1",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "--concurrency=1",
            "--loglevel=WARNING",
            "-Q",
            env["CELERY_QUEUE"],
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from journeys.services import journey_start; "
                "print(journey_start(definition='lost_card', customer_ref='CUST-00009',"
                " request={'reason': 'lost'}).pk)",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        journey_id = int(started.stdout.strip().splitlines()[-1])
        finished = wait_for(
            lambda: (j := Journey.objects.get(pk=journey_id)).status != Journey.Status.RUNNING and j,
            timeout=60,
            message="the journey did not finish over RabbitMQ",
        )
        assert finished.status == Journey.Status.COMPLETED
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
