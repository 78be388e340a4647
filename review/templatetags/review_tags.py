"""Small additions the exception workbench makes to the journey page (flag, annotate events)."""

from __future__ import annotations

from typing import Any

from django import template

from review.cases.access import may_annotate
from review.cases.forms import FlagForm
from review.models import Annotation

register = template.Library()


def _journey_review(context: template.Context, journey) -> dict[str, Any]:
    """Per request and journey: may the user annotate, and the annotations by event (one query)."""
    request = context.get("request")
    cache = getattr(request, "_review_cache", None)
    if cache is None:
        cache = {}
        if request is not None:
            request._review_cache = cache
    if journey.pk not in cache:
        user = context["user"]
        by_event: dict[int, list[Annotation]] = {}
        for annotation in (
            Annotation.objects.filter(journey=journey, event__isnull=False)
            .select_related("author")
            .prefetch_related("labels")
        ):
            by_event.setdefault(annotation.event_id, []).append(annotation)
        cache[journey.pk] = {
            "may_annotate": may_annotate(user, journey.definition),
            "by_event": by_event,
        }
    return cache[journey.pk]


@register.inclusion_tag("review/cases/_event_annotations.html", takes_context=True)
def event_annotations(context: template.Context, event) -> dict[str, Any]:
    review = _journey_review(context, event.journey)
    return {
        "event": event,
        "annotations": review["by_event"].get(event.pk, []),
        "may_annotate": review["may_annotate"],
    }


@register.inclusion_tag("review/cases/_journey_panel.html", takes_context=True)
def journey_review_panel(context: template.Context, journey) -> dict[str, Any]:
    review = _journey_review(context, journey)
    return {
        "journey": journey,
        "cases": journey.exception_cases.select_related("group").order_by("-opened_at")[:20],
        "may_annotate": review["may_annotate"],
        "form": FlagForm(),
        "csrf_token": context.get("csrf_token"),
    }
