"""The Celery application: tasks live in each app's ``tasks.py``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("handoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _keep_django_logging(**kwargs) -> None:
    """Celery would replace the root logger's handlers with its own format; with LOG_FORMAT=json
    keep Django's LOGGING (one JSON object per line) in the worker and beat too."""


if os.environ.get("LOG_FORMAT", "").lower() == "json":
    setup_logging.connect(_keep_django_logging, weak=False)
