"""Celery tasks of the audit trail: thin adapters over the services."""

from __future__ import annotations

from celery import shared_task

from .chain import checkpoint_create
from .services import verification_run


@shared_task(acks_late=True)
def run_verification(verification_id: int) -> None:
    verification_run(verification_id=verification_id)


@shared_task(acks_late=True)
def audit_checkpoint() -> int | None:
    checkpoint = checkpoint_create()
    return checkpoint.seq if checkpoint else None
