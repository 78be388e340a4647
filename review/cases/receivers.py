"""Opens exception cases from the event log, inside the transaction that records the event."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from journeys.events import event_recorded, flush
from journeys.models import Event

from .services import case_open_for_event

log = logging.getLogger(__name__)

TRIGGERS = {Event.Kind.EXCEPTION, Event.Kind.ABANDONED, Event.Kind.ACTION_EXPIRED}


@receiver(event_recorded, dispatch_uid="review.cases.open_case")
def open_case_on_event(sender: Any, event: Event, **kwargs: Any) -> None:
    if event.kind not in TRIGGERS:
        return
    # The case points at the event and reads the timeline up to it: inside an agent's turn the
    # block's events are written now, outside the savepoint below (``events.flush``).
    flush()
    # A savepoint: a fault in opening the case must not roll back (and so stall) the journey
    # change that raised the exception; the event itself still shows it on the timeline.
    try:
        with transaction.atomic():
            case_open_for_event(event)
    except Exception:
        log.exception("could not open an exception case for event %s on J-%s", event.pk, event.journey_id)
