"""The metrics pages: outcome figures per journey definition over a window, as charts, a
comparison of two windows, and a CSV export. Everything reads the roll-ups (``console.models``)
through ``definitions.py``, the metrics' read side."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.forms_text import errors_in_words
from console.selectors import definitions_by_name, read_choices
from journeys.access import may_see_any

from .charts import chart_data
from .definitions import MetricSet, compute
from .forms import MetricsFilter
from .rollups import rollup_state


def _selection(request: HttpRequest) -> tuple[MetricsFilter, list | None, Any, Any]:
    """The filter form and, when it is valid, the definitions and the two windows."""
    if not may_see_any(request.user):
        raise Http404("No journeys to measure.")
    form = MetricsFilter(request.GET, user=request.user)
    if not form.is_valid():
        return read_choices(form), None, None, None
    data = form.cleaned_data
    chosen = data.get("definition")
    definitions = [chosen] if chosen else definitions_by_name(request.user)
    window, compare = data["window"], data["compare"]
    if not request.GET:
        # Show the default windows in the inputs, so a person sees (and can shift) what they read.
        form = MetricsFilter(
            user=request.user,
            initial={
                "since": window.since,
                "until": window.until,
                "compare_since": compare.since,
                "compare_until": compare.until,
            },
        )
    return read_choices(form), definitions, window, compare


def _compare_rows(current: MetricSet, previous: MetricSet) -> list[dict[str, Any]]:
    before = {key: value for key, _, value, _ in previous.headline()}
    rows = []
    for key, label, value, unit in current.headline():
        other = before.get(key)
        delta = value - other if isinstance(value, int | float) and isinstance(other, int | float) else None
        rows.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "previous": other,
                "unit": unit,
                "delta": delta,
            }
        )
    return rows


@require_GET
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    form, definitions, window, compare = _selection(request)
    if definitions is None:
        return render(request, "console/metrics/overview.html", {"form": form}, status=400)
    current = compute(definitions, window)
    previous = compute(definitions, compare)
    context = {
        "form": form,
        "definitions": definitions,
        "metrics": current,
        "previous": previous,
        "compare_rows": _compare_rows(current, previous),
        "charts": chart_data(current, previous),
        "state": rollup_state(),
        "query": request.GET.urlencode(),
    }
    return render(request, "console/metrics/overview.html", context)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _text(value: str) -> str:
    """Free text (rule names, error classes) that a spreadsheet must not run as a formula."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@require_GET
@login_required
def export_csv(request: HttpRequest) -> HttpResponse:
    form, definitions, window, compare = _selection(request)
    if definitions is None:
        errors = "\n".join(errors_in_words(form))
        return HttpResponse(f"{errors}\n", status=400, content_type="text/plain; charset=utf-8")
    current = compute(definitions, window)
    previous = compute(definitions, compare)
    scope = definitions[0].key if len(definitions) == 1 else "all"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="handoff-metrics-{scope}-{window.since}-{window.until}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(["section", "item", "metric", "unit", f"window {window}", f"comparison {compare}"])
    for row in _compare_rows(current, previous):
        writer.writerow(["outcomes", scope, row["key"], row["unit"], _fmt(row["value"]), _fmt(row["previous"])])
    for row in current.by_definition:
        key = row["definition"].key
        writer.writerow(["by journey", key, "journeys", "count", row["counters"]["journeys"], ""])
        for name, value in row["rates"].items():
            writer.writerow(["by journey", key, name, "rate", _fmt(value), ""])
        for name, value in row["durations"].items():
            writer.writerow(["by journey", key, name, "seconds", _fmt(value), ""])
    for step in current.steps:
        for key in (
            "reached",
            "abandoned",
            "abandonment_share",
            "p50_seconds",
            "p90_seconds",
            "overrides",
            "exceptions",
        ):
            writer.writerow(["by step", step["step"], key, "", _fmt(step[key]), ""])
    for rule in current.rules:
        for key in ("decided", "overrides", "override_rate", "denied", "expired"):
            writer.writerow(["by rule", _text(rule["rule"]), key, "", _fmt(rule[key]), ""])
    for reviewer in current.reviewers:
        for key in ("decisions", "approval_rate", "p50_seconds", "p90_seconds"):
            writer.writerow(["by reviewer", reviewer["approver"], key, "", _fmt(reviewer[key]), ""])
    for group in current.exception_groups:
        writer.writerow(["exception groups", _text(group["label"]), "cases", "count", group["count"], ""])
    for day in current.trend:
        for key in ("journeys", "containment_rate", "escalation_rate", "takeover_rate"):
            writer.writerow(["trend", day["day"], key, "", _fmt(day[key]), ""])
    return response
