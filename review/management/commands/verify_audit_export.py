"""``manage.py verify_audit_export FILE``: re-verify an exported CSV or JSON Lines file.

Uses ``review/audit/offline.py`` (the same module a third party runs with plain Python:
``python offline.py FILE``), plus what only Handoff has: the signing key, to check the signature
of each checkpoint the export carries, and the outside sink's copy of the checkpoints.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from review.audit.chain import audit_key
from review.audit.offline import read_checkpoints, summary, verify_file
from review.audit.sink import sink_read


class Command(BaseCommand):
    help = "Re-verify an audit export (CSV or JSON Lines): records, links, manifest, signed checkpoints."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--checkpoints", metavar="FILE", help="a copy of the checkpoints (default: the sink)")

    def handle(self, *args: Any, file: str, checkpoints: str | None = None, **options: Any) -> None:
        try:
            outside = read_checkpoints(checkpoints) if checkpoints else sink_read()
            report = verify_file(file, key=audit_key(), outside_checkpoints=outside)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"Cannot read {file} as an audit export: {exc}") from exc
        for problem in report["problems"]:
            self.stderr.write(f"BROKEN {problem}")
        if not report["ok"]:
            raise CommandError(f"Export does not verify. {summary(report)}")
        self.stdout.write(self.style.SUCCESS(f"Export verifies. {summary(report)}"))
