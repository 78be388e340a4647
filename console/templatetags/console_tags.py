"""Small presentation helpers for the console's templates."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """A short human duration: '45 s', '12 min', '3 h 5 min', '2 d 4 h'; negative gets a minus."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    sign = "\u2212" if seconds < 0 else ""  # a typographic minus
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


@register.filter
def since(value) -> str:
    if value is None:
        return "—"
    return duration(timezone.now() - value)


@register.filter
def until(value) -> str:
    if value is None:
        return "—"
    return duration(value - timezone.now())


@register.filter
def humanize_key(value: str) -> str:
    return str(value).replace("_", " ").capitalize()


@register.filter
def display_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')}: {display_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(display_value(v) for v in value) or "—"
    return str(value)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.simple_tag(takes_context=True)
def query_with(context, **kwargs: Any) -> str:
    """The current query string with some parameters replaced (for pagination and filters)."""
    query = context["request"].GET.copy()
    for key, value in kwargs.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = value
    return query.urlencode()
