"""Run the demo's automated desk worker (review/desk.py) until stopped."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import OperationalError

from review.desk import DESK_USERNAME, desk_items_round, desk_round, desk_user


class Command(BaseCommand):
    help = (
        "The demo's automated desk worker: approves routine pending actions and settles routine desk items "
        "after they waited (Ctrl-C stops)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--after", type=float, default=90.0, help="seconds an item waits before the desk looks")
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds")
        parser.add_argument("--duration", type=float, default=0, help="seconds to run; 0 runs until stopped")

    def handle(self, *args: Any, after: float, interval: float, duration: float, **options: Any) -> None:
        stop_at = time.monotonic() + duration if duration else None
        enabled = os.environ.get("DEMO_DESK", "on").lower() not in {"off", "0", "false", "no"}
        try:
            if not enabled:
                # `make run` supervises every process and stops all when one ends: stay, idle.
                self.stdout.write("Demo desk worker is off (DEMO_DESK=off): every approval waits for a person.")
                while stop_at is None or time.monotonic() < stop_at:
                    time.sleep(1.0)
                return
            user = desk_user()
            self.stdout.write(
                f"Demo desk worker '{DESK_USERNAME}' (automated) approves routine actions and settles routine "
                f"desk items after {after:g} s; DEMO_DESK=off turns it off."
            )
            while stop_at is None or time.monotonic() < stop_at:
                try:
                    done = desk_round(user, older_than=timedelta(seconds=after))
                    if done.approved:
                        self.stdout.write(f"desk approved {done.approved}, left {done.left_for_a_person} for a person")
                    settled = desk_items_round(user, older_than=timedelta(seconds=after))
                    if settled.handed_back:
                        self.stdout.write(f"desk claimed and handed back {settled.handed_back} desk item(s)")
                except OperationalError as exc:  # a busy embedded database: try again next round
                    self.stderr.write(f"database busy, retrying: {exc}")
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
