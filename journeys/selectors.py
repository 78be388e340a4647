"""Read-side queries for the journey pages, next to the services that write.

Views call these and hand the results to templates; template tags never query the database.
"""

from __future__ import annotations

from typing import Any

from .lifecycle import transitions_for
from .models import Event, Journey, ProposedAction

TIMELINE_LENGTH = 200


def timeline_events(journey: Journey) -> tuple[list[Event], int]:
    """The newest events (newest first) and how many the journey has in all."""
    events = list(journey.events.timeline()[:TIMELINE_LENGTH])
    count = journey.events.count() if len(events) == TIMELINE_LENGTH else len(events)
    return events, count


def journey_proposals(user: Any, journey: Journey) -> list[ProposedAction]:
    """The journey's proposals, newest first, each carrying ``allowed_transitions``: the lifecycle
    transitions ``user`` may take on it now (the page's buttons)."""
    proposals = list(
        journey.proposals.select_related("action_type", "proposed_by_agent", "proposed_by_user", "decided_by").order_by(
            "-created_at", "-pk"
        )
    )
    return with_transitions(user, proposals)


def with_transitions(user: Any, proposals: list[ProposedAction]) -> list[ProposedAction]:
    """Set ``allowed_transitions`` on each proposal, for the decide buttons."""
    for proposal in proposals:
        proposal.allowed_transitions = transitions_for(user, proposal)
    return proposals
