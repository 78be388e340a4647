"""Small additions the exception workbench makes to the journey page (flag, annotate events).

The tags only arrange what the view put in the context as ``journey_review``
(``review.selectors.journey_review``); they never query the database.
"""

from __future__ import annotations

from typing import Any

from django import template

from review.selectors import JourneyReview

register = template.Library()


def _review(context: template.Context) -> JourneyReview:
    return context.get("journey_review") or JourneyReview()


@register.inclusion_tag("review/cases/_event_annotations.html", takes_context=True)
def event_annotations(context: template.Context, event) -> dict[str, Any]:
    review = _review(context)
    return {
        "event": event,
        "annotations": review.by_event.get(event.pk, []),
        "may_annotate": review.may_annotate,
    }


@register.inclusion_tag("review/cases/_journey_panel.html", takes_context=True)
def journey_review_panel(context: template.Context, journey) -> dict[str, Any]:
    review = _review(context)
    return {
        "journey": journey,
        "cases": review.cases,
        "may_annotate": review.may_annotate,
        "form": review.flag_form,
        "csrf_token": context.get("csrf_token"),
    }
