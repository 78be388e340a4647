"""Chart data for the metrics page: plain JSON handed to Chart.js through ``json_script``."""

from __future__ import annotations

from typing import Any

from .definitions import MetricSet


def _pct(value: float | None) -> float | None:
    return round(value * 100, 1) if value is not None else None


def chart_data(current: MetricSet, previous: MetricSet) -> dict[str, Any]:
    funnel = current.funnel
    if current.by_definition:
        # Several journeys: leave out the steps nobody reached, or the bars drown in labels.
        funnel = [step for step in funnel if step["reached"] or step["abandoned"]]
    compare_keys = [
        ("containment_rate", "Containment"),
        ("escalation_rate", "Escalation"),
        ("takeover_rate", "Takeover"),
        ("first_contact_resolution", "First-contact resolution"),
        ("repeat_contact_rate", "Repeat contact"),
        ("error_rate", "Errors"),
        ("abandonment_rate", "Abandonment"),
        ("override_frequency", "Overrides"),
    ]
    return {
        "trend": {
            "labels": [day["day"] for day in current.trend],
            "journeys": [day["journeys"] for day in current.trend],
            "containment": [_pct(day["containment_rate"]) for day in current.trend],
            "escalation": [_pct(day["escalation_rate"]) for day in current.trend],
            "takeover": [_pct(day["takeover_rate"]) for day in current.trend],
        },
        "funnel": {
            "labels": [step["title"] for step in funnel],
            "reached": [step["reached"] for step in funnel],
            "abandoned": [step["abandoned"] for step in funnel],
        },
        "groups": {
            # Two lines per bar (definition; step / kind / cause): long signatures stay legible.
            "labels": [group["lines"] for group in current.exception_groups],
            "counts": [group["count"] for group in current.exception_groups],
            "ids": [group["group"] for group in current.exception_groups],
        },
        "compare": {
            "labels": [label for _, label in compare_keys],
            "current": [_pct(current.rates[key]) for key, _ in compare_keys],
            "previous": [_pct(previous.rates[key]) for key, _ in compare_keys],
            "current_label": str(current.window),
            "previous_label": str(previous.window),
        },
    }
