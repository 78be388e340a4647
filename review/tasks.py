"""Celery tasks of the review app: thin adapters around ``review.services``."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def expire_pending_approvals() -> dict[str, int]:
    # Idempotent: each proposal moves once under its journey lock; a repeat finds nothing due.
    return services.proposals_expire()


@shared_task(acks_late=True)
def expire_governance_changes() -> int:
    # Idempotent: each change leaves pending by one conditional UPDATE; a repeat finds nothing due.
    from .services.governance import governance_expire

    return governance_expire()
