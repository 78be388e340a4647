"""``manage.py archive_audit``: move audit records past retention to a verifiable JSON Lines file.

Keeps ``AUDIT_RETENTION_DAYS`` (365) online. Run it with ``MIGRATION_DATABASE_URL`` set (the
owner role): the application's role may not delete from the trail. Beat runs the same service
daily (``review.audit.tasks.audit_archive_daily``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from review.audit.archive import ArchiveNotAllowed, audit_archive


class Command(BaseCommand):
    help = "Archive audit records older than the retention period to JSON Lines, with a signed checkpoint."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, help="keep this many days online (default AUDIT_RETENTION_DAYS)")

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        cutoff = timezone.now() - timedelta(days=days) if days else None
        try:
            archive = audit_archive(cutoff=cutoff)
        except ArchiveNotAllowed as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(
                f"Archiving failed: {exc}. Run it as the owner role (set MIGRATION_DATABASE_URL)."
            ) from exc
        if archive is None:
            self.stdout.write("Nothing is past retention.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived {archive.records} records of {len(archive.heads)} chains to {archive.file_name} "
                f"(archive {archive.seq}, sha256 {archive.file_sha256})."
            )
        )
