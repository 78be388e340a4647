"""Celery tasks of the audit trail: thin adapters over the services."""

from __future__ import annotations

from celery import shared_task

from .chain import checkpoint_create
from .services import verification_run, verification_scheduled
from .sink import checkpoint_publish


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
    from .archive import audit_archive

    archive = audit_archive()
    return archive.seq if archive else 0
