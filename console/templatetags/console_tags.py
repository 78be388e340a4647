"""Small presentation helpers for the console's templates."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime

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
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        return local_time(value)
    return str(value)


# An ISO 8601 date and time as payloads store them ("2026-11-29T18:01:19.123+00:00").
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@register.filter
def local_time(value: datetime | str | None) -> str:
    """A moment in the operator's zone, with the zone: '2026-11-29 19:01 CET'. Accepts ISO strings."""
    if value is None or value == "":
        return "—"
    moment = value
    if isinstance(value, str):
        try:
            moment = parse_datetime(value)
        except ValueError:
            moment = None
        if moment is None:
            return value
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return date_format(timezone.localtime(moment), "Y-m-d H:i T")


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


@register.filter
def errors_in_words(form) -> list[str]:
    """A form's errors with field labels instead of field keys (see console.forms_text)."""
    from console.forms_text import errors_in_words as words

    return words(form)
