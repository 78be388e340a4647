"""``check --deploy`` flags a deployment that still runs on the demo's keys, the embedded
database or broker, the demo app, or no core-bank adapter: each names the variable that fixes it
(README, "Production")."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def demo_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    if settings.SECRET_KEY == settings.DEMO_SECRET_KEY:
        errors.append(
            Error(
                "SECRET_KEY is the demo key written in the source.",
                hint="Set SECRET_KEY to a long random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(50))') and unset HANDOFF_DEMO.",
                id="handoff.E001",
            )
        )
    if not settings.AUDIT_SIGNING_KEY:
        errors.append(
            Error(
                "AUDIT_SIGNING_KEY is not set: the audit checkpoints are signed with a key derived from SECRET_KEY.",
                hint="Set AUDIT_SIGNING_KEY to a long random value kept out of the database and unset HANDOFF_DEMO.",
                id="handoff.E002",
            )
        )
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        errors.append(
            Error(
                "The database is the embedded SQLite file under var/.",
                hint="Set DATABASE_URL to your PostgreSQL server, e.g. postgres://handoff@db.example/handoff.",
                id="handoff.E003",
            )
        )
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        errors.append(
            Error(
                "The task broker is the embedded filesystem queue under var/.",
                hint="Set CELERY_BROKER_URL to your Redis or RabbitMQ server.",
                id="handoff.E004",
            )
        )
    if settings.HANDOFF_DEMO:
        errors.append(
            Error(
                "The demo bank is installed (simulated core bank, scripted agent, customer simulator).",
                hint="Set HANDOFF_DEMO=0.",
                id="handoff.E005",
            )
        )
    if not settings.HANDOFF["CORE_BANK"]:
        errors.append(
            Error(
                "No core-bank adapter is configured.",
                hint="Set HANDOFF_CORE_BANK to the dotted path of your journeys.corebank.base.CoreBank subclass.",
                id="handoff.E006",
            )
        )
    return errors
