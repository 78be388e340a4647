"""Changing permission scopes and cumulative limits. Every change keeps its before and after in
``ScopeChange`` and is announced on ``journeys.events.governance_changed`` (the audit trail
listens), in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.forms import ModelForm

from journeys.events import governance_changed

from ..models import AuditRecord, CumulativeLimit, PermissionScope, ScopeChange

Governed = PermissionScope | CumulativeLimit


class ScopeError(Exception):
    """A scope change that cannot be made; the message is for the admin."""


def _target(obj: Governed) -> str:
    return ScopeChange.Target.SCOPE if isinstance(obj, PermissionScope) else ScopeChange.Target.LIMIT


def _record(
    obj: Governed, *, change: str, actor, before: dict[str, Any] | None, after: dict[str, Any] | None, reason: str
) -> ScopeChange:
    target = _target(obj)
    entry = ScopeChange.objects.create(
        target=target,
        target_id=obj.pk,
        name=obj.name,
        change=change,
        actor=actor,
        before=before,
        after=after,
        reason=reason,
    )
    noun = "permission scope" if target == ScopeChange.Target.SCOPE else "cumulative limit"
    governance_changed.send(
        sender=type(obj),
        kind=AuditRecord.Kind.SCOPE_CHANGE,
        actor=actor,
        subject=f"{noun} '{obj.name}'",
        before=before,
        after=after,
        reason=reason,
        data={"target": target, "id": obj.pk, "change": change, "history": entry.pk},
    )
    return entry


def _save(form: ModelForm, *, actor, reason: str) -> tuple[Governed, ScopeChange | None]:
    reason = (reason or "").strip()
    if not reason:
        raise ScopeError("Say why you change the rule; the reason is kept with the change.")
    model = form._meta.model
    before = None
    if form.instance.pk:
        # The stored row, locked, is the "before" (the form has already changed the instance).
        before = model.objects.select_for_update().order_by().get(pk=form.instance.pk).snapshot()
    obj = form.save()
    after = obj.snapshot()
    if before == after:
        return obj, None
    change = ScopeChange.Change.UPDATED if before else ScopeChange.Change.CREATED
    return obj, _record(obj, change=change, actor=actor, before=before, after=after, reason=reason)


@transaction.atomic
def scope_save(*, form: ModelForm, actor, reason: str) -> tuple[PermissionScope, ScopeChange | None]:
    """Create or update a scope from a valid form. Returns the scope and its history entry
    (None when nothing changed)."""
    return _save(form, actor=actor, reason=reason)


@transaction.atomic
def limit_save(*, form: ModelForm, actor, reason: str) -> tuple[CumulativeLimit, ScopeChange | None]:
    return _save(form, actor=actor, reason=reason)


def _set_enabled(model: type[Governed], pk: int, *, enabled: bool, actor, reason: str) -> Governed:
    reason = (reason or "").strip()
    if not reason:
        raise ScopeError("Say why you " + ("enable" if enabled else "disable") + " the rule.")
    obj = model.objects.select_for_update().order_by().filter(pk=pk).first()
    if obj is None:
        raise ScopeError("No such rule.")
    if obj.is_enabled == enabled:
        raise ScopeError(f"'{obj.name}' is already {'enabled' if enabled else 'disabled'}.")
    before = obj.snapshot()
    obj.is_enabled = enabled
    obj.save(update_fields=["is_enabled", "updated_at"])
    change = ScopeChange.Change.ENABLED if enabled else ScopeChange.Change.DISABLED
    _record(obj, change=change, actor=actor, before=before, after=obj.snapshot(), reason=reason)
    return obj


@transaction.atomic
def scope_set_enabled(*, scope_id: int, enabled: bool, actor, reason: str) -> PermissionScope:
    return _set_enabled(PermissionScope, scope_id, enabled=enabled, actor=actor, reason=reason)


@transaction.atomic
def limit_set_enabled(*, limit_id: int, enabled: bool, actor, reason: str) -> CumulativeLimit:
    return _set_enabled(CumulativeLimit, limit_id, enabled=enabled, actor=actor, reason=reason)
