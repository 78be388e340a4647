"""Beat keeps the metric roll-ups current; the task is a thin adapter over ``rollups``."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .rollups import rollup_refresh


@shared_task(name="console.metrics.tasks.refresh_metrics", ignore_result=True)
def refresh_metrics() -> dict[str, Any]:
    # Idempotent and self-serialising (the state row is locked with SKIP LOCKED), so a
    # redelivered or overlapping run is harmless.
    return rollup_refresh()
