"""Installs the demo bank's four journey definitions, written customer-back.

``install_definitions`` is idempotent: it creates a definition's first version, and a new
version only when the spec below changed, so running journeys keep the version they pinned.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from journeys.models import DefinitionVersion, JourneyDefinition

from .journeys import JOURNEYS

# The four journeys' definitions live in their modules (``demo.journeys``).
DEMO_DEFINITIONS: list[dict[str, Any]] = [journey.DEFINITION for journey in JOURNEYS.values()]


@transaction.atomic
def install_definitions() -> list[JourneyDefinition]:
    installed = []
    for item in DEMO_DEFINITIONS:
        team, _ = Group.objects.get_or_create(name=item["team"])
        definition, _ = JourneyDefinition.objects.update_or_create(
            key=item["key"],
            defaults={
                "name": item["name"],
                "customer_goal": item["customer_goal"],
                "risk_level": item["risk_level"],
                "owning_team": team,
                "fallback_queue": item["fallback_queue"],
            },
        )
        latest = definition.current_version()
        if latest is None or latest.spec != item["spec"] or latest.sla_minutes != item["sla_minutes"]:
            DefinitionVersion.objects.create(
                definition=definition,
                number=(latest.number + 1) if latest else 1,
                spec=item["spec"],
                sla_minutes=item["sla_minutes"],
            )
        installed.append(definition)
    return installed
