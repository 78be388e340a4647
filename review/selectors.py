"""Read-side queries of the review app, next to its services.

Views call these and hand the results to templates; template tags never query the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cases.access import may_annotate
from .models import Annotation, ExceptionCase


@dataclass
class JourneyReview:
    """What the exception workbench adds to a journey page: may the user annotate, the
    annotations by event, and the journey's recent exception cases."""

    may_annotate: bool = False
    by_event: dict[int, list[Annotation]] = field(default_factory=dict)
    cases: list[ExceptionCase] = field(default_factory=list)


def journey_review(user: Any, journey: Any, *, with_cases: bool = True) -> JourneyReview:
    by_event: dict[int, list[Annotation]] = {}
    for annotation in (
        Annotation.objects.filter(journey=journey, event__isnull=False)
        .select_related("author")
        .prefetch_related("labels")
    ):
        by_event.setdefault(annotation.event_id, []).append(annotation)
    cases = list(journey.exception_cases.select_related("group").order_by("-opened_at")[:20]) if with_cases else []
    return JourneyReview(may_annotate=may_annotate(user, journey.definition), by_event=by_event, cases=cases)
