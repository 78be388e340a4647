"""Services for exception cases, annotations and the label taxonomy.

Each writes its journey events (``Event.Kind.ANNOTATION``) or governance signal in the same
transaction, so the audit trail holds every annotation, assignment, resolution and taxonomy
change. Callers check permissions (``review.cases.access``); services check state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from journeys import events
from journeys.models import Event, ExceptionKind, Journey, ProposedAction

from ..models import Annotation, AuditRecord, CaseGroup, ExceptionCase, Label

CONTEXT_EVENTS = 5  # how many events up to the trigger a case links, for context

# Exception kinds about one refused proposal: at most one case per proposal among them.
PER_PROPOSAL_KINDS = {ExceptionKind.POLICY_DENIED, ExceptionKind.OUT_OF_BOUNDS}


class CaseError(Exception):
    """A change the case's state does not allow; the message is for people."""


def cause_of(data: dict[str, Any]) -> str:
    """The cause a case is grouped by, from the structured fields its event was written with —
    the rule that denied, the class of the error — never parsed out of a message."""
    for field in ("cause", "rule", "error_class"):  # bounds name their cause; denials their rule
        if data.get(field):
            return str(data[field])
    return ""


def _group_for(journey: Journey, *, step: str, kind: str, cause: str) -> CaseGroup:
    group, _ = CaseGroup.objects.get_or_create(
        definition_id=journey.definition_id, step=step[:60], kind=kind[:60], cause=cause[:200]
    )
    return group


def case_open(
    *,
    journey: Journey,
    trigger_event: Event,
    kind: str,
    summary: str,
    step: str | None = None,
    cause: str = "",
    flagged_by: Any = None,
) -> ExceptionCase:
    """Open a case for ``trigger_event`` (idempotent: one case per triggering event)."""
    existing = ExceptionCase.objects.filter(trigger_event=trigger_event).first()
    if existing is not None:
        return existing
    step = trigger_event.step if step is None else step
    group = _group_for(journey, step=step, kind=kind, cause=cause)
    case = ExceptionCase.objects.create(
        journey=journey,
        group=group,
        kind=kind[:60],
        step=step[:60],
        cause=cause[:200],
        summary=summary,
        trigger_event=trigger_event,
        flagged_by=flagged_by,
        opened_at=trigger_event.at,
    )
    around = list(
        Event.objects.filter(journey=journey, id__lte=trigger_event.id)
        .order_by("-id")
        .values_list("id", flat=True)[:CONTEXT_EVENTS]
    )
    case.events.set(around)
    return case


def case_open_for_event(event: Event) -> ExceptionCase | None:
    """Open the case an event calls for, if any. Runs inside the event's transaction."""
    journey = event.journey
    data = event.data or {}
    if event.kind == Event.Kind.EXCEPTION:
        kind = str(data.get("kind") or ExceptionKind.AGENT_HANDOFF)
        if kind == ExceptionCase.Kind.APPROVAL_EXPIRED and data.get("proposal"):
            # The expiry's own event (ACTION_EXPIRED) opened the case already: the hand-over
            # that follows belongs to it, not to a second group without the rule.
            return _expiry_case(journey, proposal_id=data["proposal"], event=event)
        proposal_id = data.get("proposal")
        if proposal_id and kind in PER_PROPOSAL_KINDS:
            # One case per refused proposal: the runtime's hand-over to a person after the
            # refusal is part of the same case, not a second one.
            existing = (
                ExceptionCase.objects.filter(journey=journey, trigger_event__data__proposal=proposal_id)
                .filter(kind__in=PER_PROPOSAL_KINDS)
                .first()
            )
            if existing is not None:
                existing.events.add(event)
                return existing
        return case_open(journey=journey, trigger_event=event, kind=kind, summary=event.summary, cause=cause_of(data))
    if event.kind == Event.Kind.ABANDONED:
        step = str(data.get("step") or event.step)
        return case_open(
            journey=journey,
            trigger_event=event,
            kind=ExceptionCase.Kind.ABANDONED,
            step=step,
            summary=event.summary,
            cause=str(data.get("reason") or "customer left"),
        )
    if event.kind == Event.Kind.ACTION_EXPIRED:
        proposal = event.proposal
        outcome = str(data.get("outcome") or "")
        step = proposal.step if proposal is not None else event.step
        rule = proposal.decision_rule if proposal is not None else ""
        summary = event.summary + (f" (then {outcome})" if outcome else "")
        return case_open(
            journey=journey,
            trigger_event=event,
            kind=ExceptionCase.Kind.APPROVAL_EXPIRED,
            step=step,
            summary=summary,
            cause=rule,
        )
    return None


def _expiry_case(journey: Journey, *, proposal_id: Any, event: Event) -> ExceptionCase:
    existing = (
        ExceptionCase.objects.filter(
            journey=journey, kind=ExceptionCase.Kind.APPROVAL_EXPIRED, trigger_event__proposal_id=proposal_id
        )
        .order_by("-pk")
        .first()
    )
    if existing is not None:
        existing.events.add(event)
        return existing
    proposal = ProposedAction.objects.filter(pk=proposal_id, journey=journey).first()
    return case_open(
        journey=journey,
        trigger_event=event,
        kind=ExceptionCase.Kind.APPROVAL_EXPIRED,
        step=proposal.step if proposal is not None else event.step,
        summary=event.summary,
        cause=proposal.decision_rule if proposal is not None else "",
    )


def _record(journey: Journey, summary: str, *, actor: Any, data: dict[str, Any], step: str | None = None) -> Event:
    return events.record(
        journey,
        Event.Kind.ANNOTATION,
        summary,
        actor_kind=Event.Actor.PERSON,
        actor_user=actor,
        data=data,
        step=step,
    )


@transaction.atomic
def journey_flag(*, journey: Journey, actor: Any, note: str, labels: Iterable[Label] = ()) -> ExceptionCase:
    """A person flags a journey for a second look: an audit event, a case, its first annotation."""
    note = note.strip()
    if not note:
        raise CaseError("Say why you flag this journey.")
    labels = list(labels)
    event = _record(
        journey,
        f"Flagged for review: {note}",
        actor=actor,
        data={"action": "flag", "note": note, "labels": [label.key for label in labels]},
    )
    case = case_open(
        journey=journey,
        trigger_event=event,
        kind=ExceptionCase.Kind.FLAGGED,
        summary=note,
        step=journey.current_step,
        flagged_by=actor,
    )
    annotation = Annotation.objects.create(journey=journey, case=case, note=note, author=actor, audit_event=event)
    annotation.labels.set(labels)
    return case


@transaction.atomic
def annotation_add(
    *,
    actor: Any,
    note: str,
    labels: Iterable[Label] = (),
    case: ExceptionCase | None = None,
    event: Event | None = None,
) -> Annotation:
    """Annotate a case or one timeline event. Needs a note or at least one label."""
    if (case is None) == (event is None):
        raise CaseError("Annotate either a case or an event.")
    labels = list(labels)
    note = note.strip()
    if not note and not labels:
        raise CaseError("Pick a label or write a note.")
    journey = case.journey if case is not None else event.journey
    subject = f"case {case.pk}" if case is not None else f"event {event.pk} ({event.get_kind_display().lower()})"
    label_names = ", ".join(label.name for label in labels)
    summary = f"Annotated {subject}" + (f" [{label_names}]" if label_names else "") + (f": {note}" if note else ".")
    audit = _record(
        journey,
        summary,
        actor=actor,
        step=(case.step if case is not None else event.step),
        data={
            "action": "annotate",
            "case": case.pk if case else None,
            "event": event.pk if event else None,
            "labels": [label.key for label in labels],
            "note": note,
        },
    )
    annotation = Annotation.objects.create(
        journey=journey, case=case, event=event, note=note, author=actor, audit_event=audit
    )
    annotation.labels.set(labels)
    return annotation


def _lock_case(case: ExceptionCase) -> ExceptionCase:
    return ExceptionCase.objects.select_for_update().select_related("journey", "group").get(pk=case.pk)


@transaction.atomic
def case_assign(*, case: ExceptionCase, assignee: Any, actor: Any) -> ExceptionCase:
    """Give an unresolved case to a person (re-assigning is allowed)."""
    case = _lock_case(case)
    if case.is_resolved:
        raise CaseError(f"Case {case.pk} is already resolved.")
    now = timezone.now()
    updated = (
        ExceptionCase.objects.filter(pk=case.pk)
        .exclude(status=ExceptionCase.Status.RESOLVED)
        .update(status=ExceptionCase.Status.ASSIGNED, assignee=assignee, assigned_at=now)
    )
    if not updated:
        raise CaseError(f"Case {case.pk} changed meanwhile; reload and try again.")
    _record(
        case.journey,
        f"Case {case.pk} assigned to {assignee.get_username()}.",
        actor=actor,
        step=case.step,
        data={"action": "assign", "case": case.pk, "assignee": assignee.get_username()},
    )
    case.status, case.assignee, case.assigned_at = ExceptionCase.Status.ASSIGNED, assignee, now
    return case


@transaction.atomic
def case_resolve(*, case: ExceptionCase, resolution: str, note: str, actor: Any) -> ExceptionCase:
    """Resolve a case once; a second resolve is refused, so the first resolution stands."""
    if resolution not in ExceptionCase.Resolution.values:
        raise CaseError("Pick a resolution.")
    case = _lock_case(case)
    now = timezone.now()
    updated = (
        ExceptionCase.objects.filter(pk=case.pk)
        .exclude(status=ExceptionCase.Status.RESOLVED)
        .update(
            status=ExceptionCase.Status.RESOLVED,
            resolution=resolution,
            resolution_note=note.strip(),
            resolved_by=actor,
            resolved_at=now,
        )
    )
    if not updated:
        raise CaseError(f"Case {case.pk} is already resolved.")
    label = ExceptionCase.Resolution(resolution).label
    _record(
        case.journey,
        f"Case {case.pk} resolved: {label}" + (f" — {note.strip()}" if note.strip() else "."),
        actor=actor,
        step=case.step,
        data={"action": "resolve", "case": case.pk, "resolution": resolution, "note": note.strip()},
    )
    case.status, case.resolution, case.resolved_at = ExceptionCase.Status.RESOLVED, resolution, now
    return case


@transaction.atomic
def group_resolve(*, cases: Iterable[ExceptionCase], resolution: str, note: str, actor: Any) -> int:
    """Resolve every unresolved case given (the caller filtered them by permission); all or none."""
    count = 0
    for case in cases:
        if case.is_resolved:
            continue
        case_resolve(case=case, resolution=resolution, note=note, actor=actor)
        count += 1
    if not count:
        raise CaseError("There is no unresolved case to resolve.")
    return count


@transaction.atomic
def group_assign(*, cases: Iterable[ExceptionCase], assignee: Any, actor: Any) -> int:
    count = 0
    for case in cases:
        if case.is_resolved:
            continue
        case_assign(case=case, assignee=assignee, actor=actor)
        count += 1
    if not count:
        raise CaseError("There is no unresolved case to assign.")
    return count


@transaction.atomic
def group_annotate(*, cases: Iterable[ExceptionCase], actor: Any, note: str, labels: Iterable[Label]) -> int:
    labels = list(labels)
    count = 0
    for case in cases:
        annotation_add(actor=actor, note=note, labels=labels, case=case)
        count += 1
    if not count:
        raise CaseError("There is no case to annotate.")
    return count


# --- the label taxonomy (admins) ------------------------------------------------------------

STARTING_LABELS = [
    ("agent-wrong", "Agent wrong", "The agent misread the customer or the facts."),
    ("policy-gap", "Policy gap", "The permission scopes did not foresee this case."),
    ("customer-confusion", "Customer confusion", "The customer did not understand what was asked."),
    ("system-fault", "System fault", "A core system or the runtime failed."),
]


def labels_install_defaults() -> int:
    """Create the starting taxonomy where it is missing (idempotent; keeps admins' edits)."""
    created = 0
    for key, name, description in STARTING_LABELS:
        if not Label.objects.filter(Q(key=key) | Q(name__iexact=name)).exists():
            Label.objects.create(key=key, name=name, description=description)
            created += 1
    return created


def _label_changed(*, actor: Any, label: Label, before: dict[str, Any] | None, reason: str = "") -> None:
    events.governance_changed.send(
        sender=Label,
        kind=AuditRecord.Kind.LABEL_CHANGE,
        actor=actor,
        subject=f"label {label.key}",
        before=before,
        after=label.as_audit(),
        reason=reason,
        data={"label": label.pk},
    )


@transaction.atomic
def label_create(*, actor: Any, name: str, description: str = "") -> Label:
    name = name.strip()
    key = slugify(name)[:60]
    if not name or not key:
        raise CaseError("A label needs a name.")
    if Label.objects.filter(key=key).exists() or Label.objects.filter(name__iexact=name).exists():
        raise CaseError(f"A label called “{name}” exists already.")
    label = Label.objects.create(key=key, name=name, description=description.strip())
    _label_changed(actor=actor, label=label, before=None)
    return label


@transaction.atomic
def label_update(*, actor: Any, label: Label, name: str, description: str, is_active: bool) -> Label:
    label = Label.objects.select_for_update().get(pk=label.pk)
    before = label.as_audit()
    name = name.strip()
    if not name:
        raise CaseError("A label needs a name.")
    if Label.objects.filter(name__iexact=name).exclude(pk=label.pk).exists():
        raise CaseError(f"A label called “{name}” exists already.")
    label.name, label.description, label.is_active = name, description.strip(), is_active
    label.save()
    if before != label.as_audit():
        _label_changed(actor=actor, label=label, before=before)
    return label


@transaction.atomic
def label_delete(*, actor: Any, label: Label) -> None:
    """Delete an unused label; a label already used is retired instead (annotations keep it)."""
    label = Label.objects.select_for_update().get(pk=label.pk)
    if label.annotations.exists():
        raise CaseError(f"“{label.name}” is used by annotations; retire it instead.")
    before = label.as_audit()
    events.governance_changed.send(
        sender=Label,
        kind=AuditRecord.Kind.LABEL_CHANGE,
        actor=actor,
        subject=f"label {label.key}",
        before=before,
        after=None,
        reason="deleted",
        data={"label": label.pk},
    )
    label.delete()
