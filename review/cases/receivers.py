"""Opens exception cases from the event log, inside the transaction that records the event."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from journeys.events import event_recorded
from journeys.models import Event

from .services import case_open_for_event

TRIGGERS = {Event.Kind.EXCEPTION, Event.Kind.ABANDONED, Event.Kind.ACTION_EXPIRED}


@receiver(event_recorded, dispatch_uid="review.cases.open_case")
def open_case_on_event(sender: Any, event: Event, **kwargs: Any) -> None:
    if event.kind in TRIGGERS:
        case_open_for_event(event)
