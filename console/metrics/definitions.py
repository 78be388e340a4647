"""Every outcome metric, computed exactly as docs/metrics.md defines it.

The inputs are the compact facts of ``console.models`` (kept by ``rollups``) — never the raw
event log — so a page over months of journeys reads one row per journey at most, and the
headline counters come from ``DailyRollup``. Each function names the section of the doc it
implements.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Q, QuerySet, Sum

from journeys.models import JourneyDefinition

from ..models import DailyRollup, DecisionFact, JourneyFact, StepFact

REPEAT_WINDOW = timedelta(days=7)


def high_value_amount() -> Decimal:
    return Decimal(str(getattr(settings, "METRICS_HIGH_VALUE_AMOUNT", 500)))


def quick_decision_seconds() -> float:
    return float(getattr(settings, "METRICS_QUICK_DECISION_SECONDS", 10))


# --- helpers --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of the values up to it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class NearestRank(Aggregate):
    """``percentile`` in SQL (PostgreSQL): ``percentile_disc`` returns the first value whose
    position in the ordering reaches the fraction, the same nearest-rank value."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)r) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, p: float, **extra: Any) -> None:
        super().__init__(expression, fraction=p / 100, **extra)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Window:
    """UTC days ``since`` … ``until``, both included."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]

    def __str__(self) -> str:
        return f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}"


# --- daily counters (§ Counters) -----------------------------------------------------------


def daily_counters(journeys: QuerySet[JourneyFact], decisions: QuerySet[DecisionFact]) -> dict[str, int]:
    """The counters of one roll-up bucket, from the facts in it."""
    j = journeys.aggregate(
        journeys=Count("pk"),
        completed=Count("pk", filter=Q(status="completed")),
        contained=Count("pk", filter=Q(contained=True)),
        escalated=Count("pk", filter=Q(escalated=True)),
        taken_over=Count("pk", filter=Q(taken_over=True)),
        abandoned=Count("pk", filter=Q(abandoned=True)),
        errored=Count("pk", filter=Q(errored=True)),
        repeat_contacts=Count("pk", filter=Q(repeat_contact=True)),
        first_contact_resolved=Count("pk", filter=Q(first_contact_resolved=True)),
    )
    d = decisions.aggregate(
        approvals=Count("pk", filter=Q(outcome=DecisionFact.Outcome.APPROVED)),
        rejections=Count("pk", filter=Q(outcome=DecisionFact.Outcome.REJECTED)),
        edited_approvals=Count("pk", filter=Q(outcome=DecisionFact.Outcome.APPROVED, edited=True)),
        expirations=Count("pk", filter=Q(outcome=DecisionFact.Outcome.EXPIRED)),
        policy_denials=Count("pk", filter=Q(outcome=DecisionFact.Outcome.DENIED)),
    )
    d["person_decisions"] = d["approvals"] + d["rejections"]
    return {**j, **d}


def sum_counters(rollups: QuerySet[DailyRollup]) -> dict[str, int]:
    sums = rollups.aggregate(**{name: Sum(name) for name in DailyRollup.COUNTERS})
    return {name: int(value or 0) for name, value in sums.items()}


# --- the headline figures (§ Outcome metrics) ----------------------------------------------

RATE_METRICS = [
    # key, label, numerator counter, denominator counter
    ("containment_rate", "Containment rate", "contained", "journeys"),
    ("escalation_rate", "Escalation rate", "escalated", "journeys"),
    ("takeover_rate", "Takeover rate", "taken_over", "journeys"),
    ("first_contact_resolution", "First-contact resolution", "first_contact_resolved", "journeys"),
    ("repeat_contact_rate", "Repeat-contact rate", "repeat_contacts", "journeys"),
    ("error_rate", "Error rate", "errored", "journeys"),
    ("abandonment_rate", "Abandonment rate", "abandoned", "journeys"),
]


def rates(counters: dict[str, int]) -> dict[str, float | None]:
    out = {key: rate(counters[num], counters[den]) for key, _, num, den in RATE_METRICS}
    overrides = counters["rejections"] + counters["edited_approvals"]
    out["override_frequency"] = rate(overrides, counters["person_decisions"])
    return out


@dataclass
class MetricSet:
    window: Window
    counters: dict[str, int]
    rates: dict[str, float | None]
    durations: dict[str, float | None]
    funnel: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    reviewers: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[DecisionFact] = field(default_factory=list)
    exception_groups: list[dict[str, Any]] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)
    by_definition: list[dict[str, Any]] = field(default_factory=list)

    def headline(self) -> list[tuple[str, str, Any, str]]:
        """(key, label, value, unit) for the figures the page and the CSV show first."""
        rows: list[tuple[str, str, Any, str]] = [("journeys", "Journeys started", self.counters["journeys"], "count")]
        for key, label, _, _ in RATE_METRICS:
            rows.append((key, label, self.rates[key], "rate"))
        rows += [
            (
                "override_frequency",
                "Human override frequency",
                self.rates["override_frequency"],
                "rate",
            ),
            (
                "resolution_p50",
                "Time to resolution p50",
                self.durations["resolution_p50"],
                "seconds",
            ),
            (
                "resolution_p90",
                "Time to resolution p90",
                self.durations["resolution_p90"],
                "seconds",
            ),
            (
                "approval_latency_p50",
                "Approval latency p50",
                self.durations["approval_latency_p50"],
                "seconds",
            ),
            (
                "approval_latency_p90",
                "Approval latency p90",
                self.durations["approval_latency_p90"],
                "seconds",
            ),
            ("person_decisions", "Decisions by people", self.counters["person_decisions"], "count"),
            (
                "policy_breach_attempts",
                "Policy breach attempts",
                self.counters["policy_denials"],
                "count",
            ),
            ("approval_expirations", "Approvals expired", self.counters["expirations"], "count"),
        ]
        return rows


def journey_facts(definition_ids: list[int], window: Window) -> QuerySet[JourneyFact]:
    return JourneyFact.objects.filter(definition_id__in=definition_ids, day__gte=window.since, day__lte=window.until)


def decision_facts(definition_ids: list[int], window: Window) -> QuerySet[DecisionFact]:
    return DecisionFact.objects.filter(definition_id__in=definition_ids, day__gte=window.since, day__lte=window.until)


def counters_from_rollups(definition_ids: list[int], window: Window) -> dict[str, int]:
    return sum_counters(
        DailyRollup.objects.filter(definition_id__in=definition_ids, day__gte=window.since, day__lte=window.until)
    )


def counters_from_facts(definition_ids: list[int], window: Window) -> dict[str, int]:
    return daily_counters(journey_facts(definition_ids, window), decision_facts(definition_ids, window))


def durations(definition_ids: list[int], window: Window) -> dict[str, float | None]:
    resolution = [
        v
        for v in journey_facts(definition_ids, window)
        .filter(resolution_seconds__isnull=False)
        .values_list("resolution_seconds", flat=True)
    ]
    latency = [
        v
        for v in decision_facts(definition_ids, window)
        .filter(latency_seconds__isnull=False)
        .values_list("latency_seconds", flat=True)
    ]
    return {
        "resolution_p50": percentile(resolution, 50),
        "resolution_p90": percentile(resolution, 90),
        "approval_latency_p50": percentile(latency, 50),
        "approval_latency_p90": percentile(latency, 90),
    }


# --- by step (§ Funnel and time per step) --------------------------------------------------


def step_order(definitions: list[JourneyDefinition]) -> list[tuple[str, str]]:
    """(step key, title) in the order of the definitions' current versions, without repeats."""
    seen: dict[str, str] = {}
    for definition in definitions:
        version = definition.current_version()
        for step in version.steps if version else []:
            seen.setdefault(step["key"], step["title"])
    return list(seen.items())


def by_step(definitions: list[JourneyDefinition], window: Window) -> list[dict[str, Any]]:
    ids = [d.pk for d in definitions]
    facts = journey_facts(ids, window)
    runs = StepFact.objects.filter(definition_id__in=ids, day__gte=window.since, day__lte=window.until)
    abandoned = dict(
        facts.filter(abandoned=True).values("abandoned_step").annotate(n=Count("pk")).values_list("abandoned_step", "n")
    )
    # Per step: journeys that reached it, finished runs, mean and nearest-rank p50/p90 seconds.
    # PostgreSQL computes them in one grouped pass; elsewhere the finished runs' times are read.
    stats: dict[str, tuple[int, int, float | None, float | None, float | None]] = {}
    if connection.vendor == "postgresql":
        for step, reached, n_runs, mean, p50, p90 in (
            runs.values("step")
            .annotate(
                reached=Count("journey_id", distinct=True),
                runs=Count("seconds"),
                mean=Avg("seconds"),
                p50=NearestRank("seconds", 50),
                p90=NearestRank("seconds", 90),
            )
            .values_list("step", "reached", "runs", "mean", "p50", "p90")
        ):
            stats[step] = (reached, n_runs, mean, p50, p90)
    else:
        reached_by_step = runs.values("step").annotate(n=Count("journey_id", distinct=True))
        seconds: dict[str, list[float]] = defaultdict(list)
        for step, value in runs.filter(seconds__isnull=False).values_list("step", "seconds"):
            seconds[step].append(value)
        for step, reached in reached_by_step.values_list("step", "n"):
            times = seconds.get(step, [])
            mean = sum(times) / len(times) if times else None
            stats[step] = (reached, len(times), mean, percentile(times, 50), percentile(times, 90))
    decisions = decision_facts(ids, window)
    overrides = dict(
        decisions.filter(
            Q(outcome=DecisionFact.Outcome.REJECTED) | Q(outcome=DecisionFact.Outcome.APPROVED, edited=True)
        )
        .values("step")
        .annotate(n=Count("pk"))
        .values_list("step", "n")
    )
    from review.models import ExceptionCase

    exceptions = dict(
        ExceptionCase.objects.filter(
            group__definition_id__in=ids, opened_at__gte=window.start, opened_at__lt=window.end
        )
        .values("step")
        .annotate(n=Count("pk"))
        .values_list("step", "n")
    )
    rows = []
    for key, title in step_order(definitions):
        n_reached, n_runs, mean, p50, p90 = stats.get(key, (0, 0, None, None, None))
        n_abandoned = abandoned.get(key, 0)
        rows.append(
            {
                "step": key,
                "title": title,
                "reached": n_reached,
                "abandoned": n_abandoned,
                "abandonment_share": rate(n_abandoned, n_reached),
                "runs": n_runs,
                "mean_seconds": mean,
                "p50_seconds": p50,
                "p90_seconds": p90,
                "overrides": overrides.get(key, 0),
                "exceptions": exceptions.get(key, 0),
            }
        )
    return rows


# --- by policy rule and by reviewer (§ Breakdowns, § Reviewers) -----------------------------


def by_rule(definition_ids: list[int], window: Window) -> list[dict[str, Any]]:
    rows = (
        decision_facts(definition_ids, window)
        .values("rule")
        .annotate(
            approved=Count("pk", filter=Q(outcome=DecisionFact.Outcome.APPROVED)),
            rejected=Count("pk", filter=Q(outcome=DecisionFact.Outcome.REJECTED)),
            edited=Count("pk", filter=Q(outcome=DecisionFact.Outcome.APPROVED, edited=True)),
            expired=Count("pk", filter=Q(outcome=DecisionFact.Outcome.EXPIRED)),
            denied=Count("pk", filter=Q(outcome=DecisionFact.Outcome.DENIED)),
        )
    )
    out = []
    for row in rows:
        decided = row["approved"] + row["rejected"]
        overrides = row["rejected"] + row["edited"]
        out.append(
            {
                **row,
                "rule": row["rule"] or "(no rule named)",
                "decided": decided,
                "overrides": overrides,
                "override_rate": rate(overrides, decided),
            }
        )
    out.sort(key=lambda r: (-r["overrides"], -r["denied"], r["rule"]))
    return out


def reviewers(definition_ids: list[int], window: Window) -> tuple[list[dict[str, Any]], list[DecisionFact]]:
    person = (
        decision_facts(definition_ids, window)
        .filter(outcome__in=[DecisionFact.Outcome.APPROVED, DecisionFact.Outcome.REJECTED])
        .select_related("approver")
    )
    per: dict[Any, dict[str, Any]] = {}
    for fact in person:
        name = fact.approver.get_username() if fact.approver else "(unknown)"
        row = per.setdefault(name, {"approver": name, "decisions": 0, "approved": 0, "rejected": 0, "latencies": []})
        row["decisions"] += 1
        row["approved" if fact.outcome == DecisionFact.Outcome.APPROVED else "rejected"] += 1
        if fact.latency_seconds is not None:
            row["latencies"].append(fact.latency_seconds)
    rows = []
    for row in sorted(per.values(), key=lambda r: (-r["decisions"], r["approver"])):
        latencies = row.pop("latencies")
        rows.append(
            {
                **row,
                "approval_rate": rate(row["approved"], row["decisions"]),
                "p50_seconds": percentile(latencies, 50),
                "p90_seconds": percentile(latencies, 90),
            }
        )
    flagged = list(
        person.filter(
            outcome=DecisionFact.Outcome.APPROVED,
            amount__gte=high_value_amount(),
            latency_seconds__lt=quick_decision_seconds(),
        )
        .select_related("journey", "approver")
        .order_by("latency_seconds", "decided_at")
    )
    return rows, flagged


def exception_groups(definition_ids: list[int], window: Window, limit: int = 10) -> list[dict[str, Any]]:
    from review.models import CaseGroup

    groups = (
        CaseGroup.objects.filter(definition_id__in=definition_ids)
        .annotate(
            n=Count(
                "cases",
                filter=Q(cases__opened_at__gte=window.start, cases__opened_at__lt=window.end),
            )
        )
        .filter(n__gt=0)
        .select_related("definition")
        .order_by("-n", "pk")[:limit]
    )
    return [
        {
            "group": g.pk,
            "label": " / ".join(g.signature_parts()),
            "count": g.n,
            "lines": [g.definition.name, " / ".join(g.signature_parts()[1:])],
        }
        for g in groups
    ]


def trend(definition_ids: list[int], window: Window) -> list[dict[str, Any]]:
    rows = (
        DailyRollup.objects.filter(definition_id__in=definition_ids, day__gte=window.since, day__lte=window.until)
        .values("day")
        .annotate(**{name: Sum(name) for name in DailyRollup.COUNTERS})
    )
    by_day = {row["day"]: row for row in rows}
    out = []
    for day in window.days:
        counters = {name: int((by_day.get(day) or {}).get(name) or 0) for name in DailyRollup.COUNTERS}
        out.append({"day": day.isoformat(), **counters, **rates(counters)})
    return out


def per_definition(definitions: list[JourneyDefinition], window: Window) -> list[dict[str, Any]]:
    """The headline figures of each definition on its own, side by side."""
    ids = [d.pk for d in definitions]
    rows = (
        DailyRollup.objects.filter(definition_id__in=ids, day__gte=window.since, day__lte=window.until)
        .values("definition_id")
        .annotate(**{name: Sum(name) for name in DailyRollup.COUNTERS})
    )
    by_id = {row["definition_id"]: row for row in rows}
    out = []
    for definition in definitions:
        row = by_id.get(definition.pk) or {}
        counters = {name: int(row.get(name) or 0) for name in DailyRollup.COUNTERS}
        out.append(
            {
                "definition": definition,
                "counters": counters,
                "rates": rates(counters),
                "durations": durations([definition.pk], window),
            }
        )
    return out


def compute(definitions: list[JourneyDefinition], window: Window) -> MetricSet:
    """All figures for these definitions over the window, from the roll-ups."""
    ids = [d.pk for d in definitions]
    counters = counters_from_rollups(ids, window)
    reviewer_rows, flagged = reviewers(ids, window)
    steps = by_step(definitions, window)
    return MetricSet(
        window=window,
        counters=counters,
        rates=rates(counters),
        durations=durations(ids, window),
        funnel=[
            {
                "step": s["step"],
                "title": s["title"],
                "reached": s["reached"],
                "abandoned": s["abandoned"],
            }
            for s in steps
        ],
        steps=steps,
        rules=by_rule(ids, window),
        reviewers=reviewer_rows,
        flagged=flagged,
        exception_groups=exception_groups(ids, window),
        trend=trend(ids, window),
        by_definition=per_definition(definitions, window) if len(definitions) > 1 else [],
    )
