"""Celery tasks of the audit trail: thin adapters over the services."""

from __future__ import annotations

import logging

from celery import shared_task

from .chain import checkpoint_create
from .services import verification_run, verification_scheduled
from .sink import checkpoint_publish

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def run_verification(verification_id: int) -> None:
    verification_run(verification_id=verification_id)


@shared_task(acks_late=True)
def audit_checkpoint() -> int | None:
    """Sign the heads that grew, then send every checkpoint the sinks lack outside the database
    (also those an earlier run signed but failed to send)."""
    checkpoint = checkpoint_create()
    checkpoint_publish()
    return checkpoint.seq if checkpoint else None


@shared_task(acks_late=True)
def audit_verify_daily() -> int:
    """Beat's daily verification; a failed run is shown to compliance and admins until someone
    acknowledges it."""
    return verification_scheduled().pk


@shared_task(acks_late=True)
def audit_archive_daily() -> int:
    """Archive what is past retention. Needs the owner role (``MIGRATION_DATABASE_URL``) in
    beat's worker; without it, says so in the log and leaves the trail as it is."""
    from .archive import ArchiveNotAllowed, audit_archive

    try:
        archive = audit_archive()
    except ArchiveNotAllowed as exc:
        logger.warning("%s", exc)
        return 0
    return archive.seq if archive else 0
