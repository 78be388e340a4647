"""Read-side queries for the journey pages, next to the services that write.

Views call these and hand the results to templates; template tags never query the database.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import Q

from .access import journeys_for
from .control import mark_agents_paused
from .lifecycle import transitions_for
from .models import AgentPause, Event, Journey, ProposedAction

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


# --- the journey list and the journey page ---------------------------------------------------

JOURNEY_LIST_PAGE_SIZE = 25


def journey_list_page(
    user: Any,
    *,
    valid: bool = True,
    definition: Any = None,
    status: str = "",
    customer: str = "",
    page: Any = None,
):
    """The journeys ``user`` may view, newest first, 25 a page, narrowed by the filters (``live``
    is every live status); running journeys whose agent is paused are marked. Evaluated."""
    journeys = journeys_for(user).select_related("definition", "version", "agent", "controller_user")
    if not valid:
        journeys = journeys.none()
    if definition is not None:
        journeys = journeys.filter(definition=definition)
    if status == "live":
        journeys = journeys.live()
    elif status:
        journeys = journeys.filter(status=status)
    if customer.strip():
        journeys = journeys.filter(customer_ref__icontains=customer.strip())
    result = Paginator(journeys.order_by("-created_at", "-pk"), JOURNEY_LIST_PAGE_SIZE).get_page(page)
    result.object_list = mark_agents_paused(list(result.object_list))
    return result


def journey_state_key(journey: Journey) -> str:
    """Changes when what the journey page offers changes: takeover, hand-back, status, a pause."""
    pauses = (
        list(
            AgentPause.objects.active()
            .filter(
                Q(action_type__isnull=False)
                | Q(pk__in=AgentPause.objects.covering(journey.definition_id, journey.agent_id))
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if journey.is_live
        else []
    )
    paused = ".".join(str(pk) for pk in pauses) or "0"
    return f"{journey.epoch}-{journey.status}-{journey.controller_user_id or 0}-{paused}"


def newest_event_id(journey: Journey) -> int:
    """The timeline poll's marker: the journey's newest event."""
    return journey.events.order_by("-pk").values_list("pk", flat=True).first() or 0


def journey_family(user: Any, journey: Journey) -> dict[str, Any]:
    """The journeys this one started and the one that started it, as far as ``user`` may see."""
    visible = journeys_for(user)
    return {
        "children": list(visible.filter(parent=journey)),
        "parent": visible.filter(pk=journey.parent_id).first() if journey.parent_id else None,
    }
