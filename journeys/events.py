"""Writing the event log. ``record`` is the only way events are written.

``event_recorded`` is sent synchronously, inside the caller's transaction, so listeners (the
audit trail, exception cases) commit or roll back together with the change they observe.

Inside ``together()`` (one phase of an agent's turn) the events themselves are written together
at the block's end, in one INSERT, in the order they were recorded, and listeners may keep what
they write for each event and write it then too, still inside the caller's transaction:
``events_written_together`` is sent with the block's events that are still part of the
transaction (an event recorded inside a savepoint that rolled back is left out), by then with
their ids, and the block's ``stash``, where listeners kept their work. So inside a block
``event_recorded`` reaches listeners before the event has an id: a listener that needs the row
in the database at once calls ``flush()`` first (outside any savepoint of its own). A block that
raises sends nothing and writes nothing: its transaction rolls back whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.dispatch import Signal

from .db import insert_rows, queued_markers, transaction_marker
from .models import Agent, Event, Journey, ProposedAction

event_recorded = Signal()  # sender=Event, event=Event
events_written_together = Signal()  # sender=Event, events=list[Event], stash=dict

# A change to governance that is not about one journey (a permission scope, a team grant, a
# pause of agents). Sent inside the changing transaction; the audit trail listens.
# kwargs: kind (str), actor (user or None), subject (str), before (dict|None), after (dict|None),
#         reason (str), data (dict)
governance_changed = Signal()


@dataclass
class Together:
    """The events of one ``together()`` block, each with a marker that a savepoint rollback
    removes, and, once inserted, a second marker queued where the INSERT ran: an event written
    inside a savepoint that then rolled back (by ``flush``) is written again at the next write
    if the event itself still stands."""

    recorded: list[tuple[Event, Any]] = field(default_factory=list)
    stash: dict[str, Any] = field(default_factory=dict)
    written: dict[int, Any] = field(default_factory=dict)  # id(event) -> marker of its INSERT

    def add(self, event: Event) -> None:
        """A recorded event, to be written with the block's others (``write``)."""
        self.recorded.append((event, transaction_marker()))

    def surviving(self) -> list[Event]:
        alive = queued_markers()
        return [event for event, marker in self.recorded if id(marker) in alive]

    def write(self) -> None:
        """INSERT, in one statement and in order, the block's events that are still part of the
        transaction and not in the database yet; they get their ids."""
        alive = queued_markers()
        waiting = []
        for event, marker in self.recorded:
            if id(marker) not in alive:
                continue  # recorded inside a savepoint that rolled back
            done = self.written.get(id(event))
            if done is not None and id(done) in alive:
                continue  # written, and still there
            if done is not None:  # its INSERT was rolled back with a savepoint: again
                event.pk = None
                event._state.adding = True
            waiting.append(event)
        if not waiting:
            return
        insert_rows(waiting)
        for event in waiting:
            self.written[id(event)] = transaction_marker()


_together: ContextVar[Together | None] = ContextVar("events_together", default=None)


def current_together() -> Together | None:
    """The open ``together()`` block, or None: listeners then write at once."""
    return _together.get()


@contextmanager
def together() -> Iterator[None]:
    """Let listeners write this block's events' consequences together at its end. Must run
    inside the transaction (``transaction.atomic``) whose events it groups; a nested block
    joins the outer one."""
    if _together.get() is not None or not connection.in_atomic_block:
        yield
        return
    group = Together()
    token = _together.set(group)
    try:
        yield
    finally:
        _together.reset(token)
    if group.recorded:
        group.write()
        events_written_together.send(sender=Event, events=group.surviving(), stash=group.stash)


def flush() -> None:
    """Inside ``together()``: INSERT the block's events recorded so far, now (a listener that
    must find the row, or its id, in the database calls this first). Outside: nothing to do."""
    group = _together.get()
    if group is not None:
        group.write()


def record_many(journey: Journey, entries: list[dict[str, Any]]) -> list[Event]:
    """Record several events of one journey at once (one INSERT), in order; each entry holds
    ``record``'s arguments after the journey. Listeners hear of each event in turn, as if they
    had been recorded one by one."""
    group = _together.get()
    recorded = [_event(journey, **entry) for entry in entries]
    if group is None:
        recorded = Event.objects.bulk_create(recorded)
    for event in recorded:
        if group is not None:
            group.add(event)  # inserted with the block's other events
        event_recorded.send(sender=Event, event=event)
    return recorded


def _event(
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
    return Event(
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
    event = _event(
        journey,
        kind,
        summary,
        actor_kind=actor_kind,
        actor_user=actor_user,
        actor_agent=actor_agent,
        data=data,
        proposal=proposal,
        step=step,
    )
    group = _together.get()
    if group is None:
        event.save(force_insert=True)
    else:
        group.add(event)  # inserted with the block's other events
    event_recorded.send(sender=Event, event=event)
    return event
