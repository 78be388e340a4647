"""The Celery application: tasks live in each app's ``tasks.py``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("handoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after every task (a new
# connection per task: about a third of a short turn). Let it close only every 100,000 tasks
# and manage the worker's connections here, like Django does around a request.
app.add_defaults(lambda: {"CELERY_DB_REUSE_MAX": 100_000})


def _keep_worker_connections(**kwargs) -> None:
    """In the worker (and each pool process): persistent connections with health checks."""
    from django.conf import settings
    from django.db import connections

    age = settings.WORKER_CONN_MAX_AGE
    # Only the application's connection: the owner's (migrations, archiving) stays short-lived.
    conf = connections.settings["default"]
    conf["CONN_MAX_AGE"] = age
    conf["CONN_HEALTH_CHECKS"] = bool(age)


def _close_old_connections(sender=None, **kwargs) -> None:
    """Around each task, as Django around a request: close a connection that outlived its age or
    saw an error; the next query health-checks a kept one. Eager tasks share the caller's."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


worker_init.connect(_keep_worker_connections, weak=False)
worker_process_init.connect(_keep_worker_connections, weak=False)
task_prerun.connect(_close_old_connections, weak=False)
task_postrun.connect(_close_old_connections, weak=False)


def _keep_django_logging(**kwargs) -> None:
    """Celery would replace the root logger's handlers with its own format; with LOG_FORMAT=json
    keep Django's LOGGING (one JSON object per line) in the worker and beat too."""


if os.environ.get("LOG_FORMAT", "").lower() == "json":
    setup_logging.connect(_keep_django_logging, weak=False)
