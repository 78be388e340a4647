"""A worker started from the command line knows every task that beat or the console sends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, django
django.setup()
from django.conf import settings
from console.celery import app
app.loader.import_default_modules()  # what `celery worker` does at start-up
app.finalize(auto=True)
wanted = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
wanted |= {"journeys.tasks.run_step", "review.audit.tasks.run_verification"}
print(json.dumps(sorted(wanted - set(app.tasks))))
"""


def test_a_fresh_worker_process_knows_every_scheduled_and_sent_task():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
