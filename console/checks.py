"""``check --deploy`` flags a deployment that still runs on the demo's keys."""

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
    return errors
