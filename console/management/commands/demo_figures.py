"""How the demo bank is doing: containment, the queue people face, and why journeys needed them.

``python manage.py demo_figures`` after a few minutes of ``make run`` shows whether the demo is in
a steady state (most journeys completing on their own, a queue a desk can keep up with).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from journeys.models import Event, Journey, ProposedAction


class Command(BaseCommand):
    help = "Print the demo's steady-state figures: containment, waiting journeys, approvals."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--settled-after",
            type=int,
            default=180,
            help="Journeys younger than this many seconds are left out of the containment share.",
        )

    def handle(self, *args: Any, settled_after: int, **options: Any) -> None:
        now = timezone.now()
        person_events = Event.objects.filter(journey=OuterRef("pk")).filter(
            Q(kind__in=[Event.Kind.HANDED_TO_PERSON, Event.Kind.TAKEOVER])
            | (Q(actor_kind=Event.Actor.PERSON) & ~Q(kind=Event.Kind.ANNOTATION))
        )
        journeys = Journey.objects.annotate(person=Exists(person_events))
        total = journeys.count()
        settled = journeys.filter(created_at__lte=now - timedelta(seconds=settled_after))
        n_settled = settled.count()
        contained = settled.filter(status=Journey.Status.COMPLETED, person=False).count()
        by_status = Counter(journeys.values_list("status", flat=True))
        live = journeys.filter(status__in=Journey.LIVE_STATUSES)
        waiting = live.needing_person()
        out = self.stdout.write
        out(f"Journeys: {total} ({', '.join(f'{k} {v}' for k, v in sorted(by_status.items()))})")
        share = f"{contained / n_settled:.0%}" if n_settled else "—"
        out(f"Containment (completed, no person) of the {n_settled} older than {settled_after} s: {share}")
        completed = settled.filter(status=Journey.Status.COMPLETED).count()
        out(f"Completed in that set: {completed / n_settled:.0%}" if n_settled else "Completed in that set: —")
        out(f"Live: {live.count()}; waiting on a person now: {waiting.count()}")
        proposals = ProposedAction.objects
        pending = proposals.filter(status=ProposedAction.Status.PENDING).count()
        by_person = proposals.filter(decided_by__isnull=False).count()
        expired = proposals.filter(status=ProposedAction.Status.EXPIRED).count()
        out(f"Approvals: {pending} pending, {by_person} decided by a person, {expired} expired")
        reasons = Counter(
            (event.data or {}).get("exception_kind") or (event.data or {}).get("kind") or "other"
            for event in Event.objects.filter(kind=Event.Kind.HANDED_TO_PERSON).only("data")
        )
        out("Handed to a person, by reason: " + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none"))
