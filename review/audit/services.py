"""Services for the compliance pages: verification runs (with progress) and break glass."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from review.models import AuditRecord, AuditVerification
from review.models.audit import journey_chain

from .chain import audit_append, governance_append, person
from .verify import audit_verify


def verification_request(*, user: Any) -> AuditVerification:
    """Queue a verification run; the Celery task starts after this transaction commits."""
    from .tasks import run_verification

    verification = AuditVerification.objects.create(requested_by=user)
    run_verification.delay_on_commit(verification.pk)
    return verification


def verification_scheduled() -> AuditVerification:
    """Beat's daily run, in the calling task (no second hop through the broker)."""
    verification = AuditVerification.objects.create(scheduled=True)
    verification_run(verification_id=verification.pk)
    verification.refresh_from_db()
    return verification


def unacknowledged_failure() -> AuditVerification | None:
    """The oldest failed verification nobody has acknowledged yet."""
    return (
        AuditVerification.objects.filter(
            status__in=[AuditVerification.Status.BROKEN, AuditVerification.Status.ERROR],
            acknowledged_at__isnull=True,
        )
        .order_by("created_at", "id")
        .first()
    )


@transaction.atomic
def verification_acknowledge(*, verification_id: int, user: Any, note: str) -> AuditVerification | None:
    """Someone has seen a failed verification and says what they do about it; audited. None when
    it was not a failed, unacknowledged run (a second click, a forged id)."""
    updated = AuditVerification.objects.filter(
        pk=verification_id,
        status__in=[AuditVerification.Status.BROKEN, AuditVerification.Status.ERROR],
        acknowledged_at__isnull=True,
    ).update(acknowledged_at=timezone.now(), acknowledged_by=user)
    if not updated:
        return None
    verification = AuditVerification.objects.get(pk=verification_id)
    governance_append(
        kind="verification_acknowledged",
        summary=f"Acknowledged failed audit verification {verification.pk}: {note}",
        actor=user,
        payload={
            "verification": verification.pk,
            "status": verification.status,
            "message": verification.message,
            "note": note,
        },
    )
    return verification


def verification_run(*, verification_id: int) -> AuditVerification | None:
    """Run one queued verification, saving progress as it goes. Idempotent: a run that already
    finished (a redelivered task) is left alone; one that was interrupted starts over."""
    updated = AuditVerification.objects.filter(
        pk=verification_id,
        status__in=[AuditVerification.Status.QUEUED, AuditVerification.Status.RUNNING],
    ).update(status=AuditVerification.Status.RUNNING, started_at=timezone.now(), done=0)
    if not updated:
        return None

    def progress(done: int, total: int) -> None:
        AuditVerification.objects.filter(pk=verification_id).update(done=done, total=total)

    try:
        result = audit_verify(progress=progress)
    except Exception as exc:  # the page must show that the run failed, not spin forever
        AuditVerification.objects.filter(pk=verification_id).update(
            status=AuditVerification.Status.ERROR,
            finished_at=timezone.now(),
            message=f"Verification failed: {exc}",
        )
        raise
    first = result.first_break
    AuditVerification.objects.filter(pk=verification_id).update(
        status=AuditVerification.Status.PASSED if result.ok else AuditVerification.Status.BROKEN,
        finished_at=timezone.now(),
        records_checked=result.records,
        chains_checked=result.chains,
        checkpoints_checked=result.checkpoints,
        first_broken_record_id=first.record_id if first else None,
        message=result.summary(),
    )
    return AuditVerification.objects.get(pk=verification_id)


@transaction.atomic
def sensitive_unmask(*, user: Any, journey: Any, field: str, reason: str) -> Any:
    """Break glass: return the raw value of one sensitive field and audit who saw it and why.

    The caller has checked that ``user`` holds the sensitive-data right on the journey's
    definition and that ``field`` names a sensitive value on the journey page."""
    from .masking import lookup_field

    value = lookup_field(journey.context, field)
    audit_append(
        chain=journey_chain(journey.pk),
        kind=AuditRecord.Kind.BREAK_GLASS,
        summary=f"Unmasked {field.replace('_', ' ')}: {reason}",
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        customer_ref=journey.customer_ref,
        payload={"field": field, "reason": reason},
        **person(user),
    )
    return value


@transaction.atomic
def proposal_param_unmask(*, user: Any, proposal: Any, key: str, reason: str) -> Any:
    """Break glass on one sensitive parameter of a proposal (e.g. the address an edit would
    change): return its stored value and audit who saw it and why.

    The caller has checked that ``user`` may decide the proposal and holds the sensitive-data
    right on its definition. ``KeyError`` when ``key`` is not a sensitive parameter of it."""
    from .masking import is_sensitive

    if not is_sensitive(key) or key not in (proposal.params or {}):
        raise KeyError(key)
    journey = proposal.journey
    field = f"proposal.{proposal.pk}.{key}"
    audit_append(
        chain=journey_chain(journey.pk),
        kind=AuditRecord.Kind.BREAK_GLASS,
        summary=f"Unmasked {key.replace('_', ' ')} of proposal {proposal.pk}: {reason}",
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        customer_ref=journey.customer_ref,
        action_type=proposal.action_type.key,
        proposal_id=proposal.pk,
        payload={"field": field, "reason": reason},
        **person(user),
    )
    return proposal.params[key]
