"""``manage.py verify_audit``: check every audit chain and signed checkpoint.

Exits 0 when the trail is intact; otherwise exits 1 and names the first broken record.
``--checkpoints FILE`` also compares the database with a copy of the checkpoints kept outside
it (``manage.py export_audit_checkpoints``), which catches a full re-hash.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from review.audit.verify import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains and signed checkpoints."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="JSON Lines copy of the checkpoints kept outside the database",
        )

    def handle(self, *args: Any, checkpoints: str | None = None, **options: Any) -> None:
        external = None
        if checkpoints:
            try:
                with open(checkpoints, encoding="utf-8") as handle:
                    external = [json.loads(line) for line in handle if line.strip()]
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the checkpoint copy {checkpoints}: {exc}") from exc
        result = audit_verify(external_checkpoints=external)
        for found in result.breaks:
            self.stderr.write(f"BROKEN {found}")
        if not result.ok:
            raise CommandError(result.summary())
        self.stdout.write(self.style.SUCCESS(result.summary()))
