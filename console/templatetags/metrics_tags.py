"""Formatting for the metrics pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

from .console_tags import duration

register = template.Library()


@register.filter
def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


@register.filter
def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    if round(value) < 3600:  # minutes and seconds: an approval latency of 81.8 s reads "1 min 22 s", not "1 min"
        minutes, secs = divmod(round(value), 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return duration(timedelta(seconds=round(value)))


@register.filter
def metric(value: Any, unit: str) -> str:
    if unit == "rate":
        return pct(value)
    if unit == "seconds":
        return seconds(value)
    return "—" if value is None else str(value)


@register.filter
def delta(row: dict[str, Any]) -> str:
    """The change from the comparison window, in the metric's unit: '+3.1 pt', '+12 s', '+4'."""
    change = row.get("delta")
    if change is None:
        return "—"
    sign = "+" if change > 0 else ("\u2212" if change < 0 else "\u00b1")  # typographic minus, plus-minus
    size = abs(change)
    if row["unit"] == "rate":
        return f"{sign}{size * 100:.1f} pt"
    if row["unit"] == "seconds":
        return f"{sign}{seconds(size)}"
    return f"{sign}{size:g}"
