"""``manage.py export_audit_checkpoints [--output FILE]``: the signed checkpoints as JSON Lines.

Keep the output outside the database (write-once storage, another organisation's custody);
``verify_audit --checkpoints FILE`` compares the database with it later.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from review.audit.chain import checkpoint_create, checkpoint_payload
from review.models import AuditCheckpoint


class Command(BaseCommand):
    help = "Sign a fresh checkpoint and print every checkpoint as JSON Lines."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", metavar="FILE", help="write here instead of standard output")
        parser.add_argument("--no-new", action="store_true", help="do not sign a fresh checkpoint first")

    def handle(self, *args: Any, output: str | None = None, no_new: bool = False, **options: Any) -> None:
        if not no_new:
            checkpoint_create()
        lines = [
            json.dumps(checkpoint_payload(c), sort_keys=True) + "\n" for c in AuditCheckpoint.objects.order_by("seq")
        ]
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.writelines(lines)
            self.stderr.write(f"{len(lines)} checkpoints written to {output}")
        else:
            self.stdout.write("".join(lines), ending="")
