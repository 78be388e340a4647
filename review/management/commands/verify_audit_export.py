"""``manage.py verify_audit_export FILE``: re-verify an exported CSV or JSON Lines file offline.

Uses ``review/audit/offline.py`` only (no database), the same module a third party can run with
plain Python: ``python offline.py FILE``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from review.audit.offline import verify_file


class Command(BaseCommand):
    help = "Re-verify an audit export (CSV or JSON Lines) without the database."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            report = verify_file(file)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"Cannot read {file} as an audit export: {exc}") from exc
        for problem in report["problems"]:
            self.stderr.write(f"BROKEN {problem}")
        summary = (
            f"{report['records']} records in {report['chains']} chains; {report['gaps']} gaps; "
            f"{report['masked_payloads']} masked payloads checked by digest."
        )
        if not report["ok"]:
            raise CommandError(f"Export does not verify. {summary}")
        self.stdout.write(self.style.SUCCESS(f"Export verifies. {summary}"))
