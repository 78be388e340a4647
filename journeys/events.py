"""Writing the event log. ``record`` is the only way events are written.

``event_recorded`` is sent synchronously, inside the caller's transaction, so listeners (the
audit trail, exception cases) commit or roll back together with the change they observe.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from .models import Agent, Event, Journey, ProposedAction

event_recorded = Signal()  # sender=Event, event=Event

# A change to governance that is not about one journey (a permission scope, a team grant, a
# pause of agents). Sent inside the changing transaction; the audit trail listens.
# kwargs: kind (str), actor (user or None), subject (str), before (dict|None), after (dict|None),
#         reason (str), data (dict)
governance_changed = Signal()


def record(
    journey: Journey,
    kind: str,
    summary: str,
    *,
    actor_kind: str = Event.Actor.SYSTEM,
    actor_user: Any = None,
    actor_agent: Agent | None = None,
    data: dict[str, Any] | None = None,
    proposal: ProposedAction | None = None,
    step: str | None = None,
) -> Event:
    event = Event.objects.create(
        journey=journey,
        kind=kind,
        summary=summary,
        actor_kind=actor_kind,
        actor_user=actor_user,
        actor_agent=actor_agent,
        data=data or {},
        proposal=proposal,
        step=journey.current_step if step is None else step,
        epoch=journey.epoch,
    )
    event_recorded.send(sender=Event, event=event)
    return event
