"""What a person deciding one proposal needs to see, on the item itself.

An approver who decides from the queue alone — an escalation target without the right to open
the journey — must still be able to check the proposal: what the customer asked, the facts the
agent relied on (the transaction it picked and its amount), the agent's explanation, and every
earlier decision on it. The brief is read-only; the masking layer masks it like any page.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from journeys.models import Event, ProposedAction

# Events about a proposal that are decisions on it (its proposal event is the proposal itself).
DECISION_EVENTS = [
    Event.Kind.ACTION_DECIDED,
    Event.Kind.ACTION_EDITED,
    Event.Kind.ACTION_APPROVED,
    Event.Kind.ACTION_REJECTED,
    Event.Kind.ACTION_EXPIRED,
]
# Facts that name what the agent picked: shown first, as "relied on".
PICKED_FACTS = ("transaction", "fee", "classification", "confidence", "account")


def with_brief(proposals: QuerySet[ProposedAction]) -> QuerySet[ProposedAction]:
    """``proposals`` with what ``decision_brief`` reads, in two extra queries for a whole page."""
    return proposals.prefetch_related(
        Prefetch(
            "events",
            queryset=Event.objects.filter(kind__in=DECISION_EVENTS).select_related("actor_user", "actor_agent"),
            to_attr="decision_events",
        ),
        Prefetch("events", queryset=Event.objects.filter(kind=Event.Kind.ACTION_PROPOSED), to_attr="proposed_events"),
        "approvals__approver",
    )


def decision_brief(proposal: ProposedAction) -> dict[str, Any]:
    journey = proposal.journey
    context = journey.context or {}
    facts = context.get("facts") or {}
    picked = {k: facts[k] for k in PICKED_FACTS if k in facts}
    proposed = getattr(proposal, "proposed_events", None)
    if proposed is None:
        proposed = list(proposal.events.filter(kind=Event.Kind.ACTION_PROPOSED))
    decisions = getattr(proposal, "decision_events", None)
    if decisions is None:
        decisions = list(
            proposal.events.filter(kind__in=DECISION_EVENTS).select_related("actor_user", "actor_agent").order_by("id")
        )
    return {
        "request": context.get("request") or {},
        "picked": picked,
        "other_facts": {k: v for k, v in facts.items() if k not in picked},
        # As the agent proposed it, from its event: an edit since then shows among the decisions.
        "as_proposed": (proposed[0].data or {}).get("params", {}) if proposed else {},
        "explanation": proposal.explanation,
        "confidence": proposal.confidence,
        "proposer": proposal.proposer_label,
        "decisions": sorted(decisions, key=lambda e: e.pk),
        # Approvals with their reasons; one given to parameters edited since no longer counts.
        "approvals": list(proposal.approvals.all()),
    }
