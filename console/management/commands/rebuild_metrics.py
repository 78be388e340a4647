"""Recompute every metric roll-up from the record (after a restore, or to check the beat task)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from console.metrics.rollups import rollup_rebuild


class Command(BaseCommand):
    help = "Recompute the metric facts and daily roll-ups from the event log."

    def handle(self, *args: Any, **options: Any) -> None:
        result = rollup_rebuild()
        self.stdout.write(
            self.style.SUCCESS(f"Metrics rebuilt: {result['journeys']} journeys, {result['days']} definition-days.")
        )
