from __future__ import annotations

import sys

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from journeys.observability import connect_decision_log, json_logs_enabled, setup_tracing

        from . import checks  # noqa: F401  (registers the deploy checks)
        from .timezones import remember_chosen_zone

        user_logged_in.connect(remember_chosen_zone, dispatch_uid="console.remember_chosen_zone")
        if json_logs_enabled():
            connect_decision_log()
        # Web, worker, beat and management commands all pass here once per process (a Celery
        # pool process inherits it from the worker's parent).
        setup_tracing("handoff-worker" if "celery" in " ".join(sys.argv[:2]) else "handoff-web")
