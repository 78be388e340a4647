"""Play the demo bank's customers: open journeys at a steady rate and answer the agents."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, close_old_connections

from demo.simulator import Simulator
from journeys.models import JourneyDefinition


class Command(BaseCommand):
    help = "Open journeys on the demo definitions and play the customers (Ctrl-C to stop)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rate", type=float, default=6.0, help="journeys opened per minute (default 6)")
        parser.add_argument("--max-live", type=int, default=200, help="stop opening while this many are live")
        parser.add_argument("--duration", type=float, default=0, help="seconds to run; 0 runs until stopped")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, rate: float, max_live: int, duration: float, seed: int | None, **options: Any) -> None:
        if rate < 0:
            raise CommandError("--rate must be zero or more.")
        if not JourneyDefinition.objects.exists():
            raise CommandError("No journey definitions: run `python manage.py seed_demo` first.")
        from journeys.models import Journey

        sim = Simulator(seed=seed)
        interval = 60.0 / rate if rate else float("inf")
        next_open = time.monotonic()
        stop_at = time.monotonic() + duration if duration else None
        self.stdout.write(f"Simulator: opening about {rate:g} journeys a minute. Ctrl-C stops it.")
        try:
            while stop_at is None or time.monotonic() < stop_at:
                try:
                    if time.monotonic() >= next_open:
                        next_open += interval
                        if Journey.objects.live().count() < max_live:
                            journey = sim.open_journey()
                            self.stdout.write(
                                f"opened J-{journey.pk} {journey.definition.key} for {journey.customer_ref}"
                            )
                    sim.tick()
                except (OperationalError, InterfaceError) as exc:
                    # A busy embedded database, or PostgreSQL restarting: drop the broken
                    # connection so the next tick opens a fresh one, and carry on.
                    self.stderr.write(f"database unavailable, retrying: {exc}")
                    close_old_connections()
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
