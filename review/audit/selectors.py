"""Read-side queries of the compliance pages, next to the services that append to the trail.

Every read starts from ``review.audit.access.records_for``: a person reads only the records their
``audit`` grants allow. Views call these and hand evaluated results to templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from review.models import AuditCheckpoint, AuditRecord, AuditVerification

from .access import records_for

PAGE_SIZE = 50
VERIFICATION_STALE_AFTER = timedelta(minutes=30)


def searched_records(user: Any, filters: dict[str, Any] | None) -> QuerySet[AuditRecord]:
    """The records ``user`` may read matching the search (``None``: a search that did not
    validate, which matches nothing). Exact matches only: each is an (field, id) index range, so
    a page stays quick on millions of records."""
    records = records_for(user)
    if filters is None:
        return records.none()
    exact = {
        "journey": "journey_id",
        "customer": "customer_ref",
        "actor": "actor_label",
        "kind": "kind",
        "action": "action_type",
        "decision": "decision",
    }
    for name, column in exact.items():
        value = filters.get(name)
        if value:
            records = records.filter(**{column: value.strip() if isinstance(value, str) else value})
    if filters.get("since"):
        records = records.filter(at__gte=filters["since"])
    if filters.get("until"):
        records = records.filter(at__lt=filters["until"])
    return records


@dataclass
class RecordPage:
    records: list[AuditRecord]
    has_older: bool
    has_newer: bool


def record_page(records: QuerySet[AuditRecord], *, before: int | None, after: int | None) -> RecordPage:
    """Keyset pagination, newest first by id, never a COUNT over the trail: the page after
    ``after`` (newer) or before ``before`` (older), or the newest."""
    if after:
        rows = list(records.filter(id__gt=after).order_by("id")[: PAGE_SIZE + 1])
        has_newer = len(rows) > PAGE_SIZE
        rows = list(reversed(rows[:PAGE_SIZE]))
        has_older = records.filter(id__lt=rows[-1].pk).exists() if rows else False
        return RecordPage(rows, has_older, has_newer)
    if before:
        records = records.filter(id__lt=before)
    rows = list(records.order_by("-id")[: PAGE_SIZE + 1])
    return RecordPage(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, bool(before) and bool(rows))


def record_or_none(user: Any, pk: int) -> AuditRecord | None:
    return records_for(user).filter(pk=pk).first()


def journey_records(user: Any, journey_id: int) -> QuerySet[AuditRecord]:
    """A journey's records ``user`` may read, oldest first."""
    return records_for(user).filter(journey_id=journey_id).order_by("id")


def latest_verification() -> AuditVerification | None:
    return AuditVerification.objects.select_related("requested_by").first()


def verification_or_none(pk: int) -> AuditVerification | None:
    return AuditVerification.objects.filter(pk=pk).select_related("requested_by").first()


def running_verification() -> AuditVerification | None:
    """A run queued or running, unless it has not finished within the stale window (its worker
    died and the message was lost): then it no longer blocks a new one."""
    return AuditVerification.objects.filter(
        status__in=[AuditVerification.Status.QUEUED, AuditVerification.Status.RUNNING],
        created_at__gte=timezone.now() - VERIFICATION_STALE_AFTER,
    ).first()


def verification_overview() -> dict[str, Any]:
    """The verification page: the latest run, the ten most recent, the last signed checkpoint."""
    recent = list(AuditVerification.objects.select_related("requested_by")[:10])
    return {
        "verification": recent[0] if recent else None,
        "recent": recent,
        "last_checkpoint": AuditCheckpoint.objects.first(),
    }
