"""Who may read which part of the audit trail, and who may unmask sensitive fields.

Journey records are visible to holders of ``audit`` on the journey's definition. Governance
records about one definition follow the same rule; organisation-wide ones (logins, team
membership) are visible only to members of a team with the organisation-wide audit grant.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q

from journeys.access import definitions_for
from journeys.models import OrganisationGrant, holds_organisation_right
from journeys.rights import Right
from review.models import AuditRecord, SensitiveDataGrant


def audit_definition_ids(user: Any) -> list[int]:
    return list(definitions_for(user, Right.AUDIT).values_list("pk", flat=True))


def may_audit_everything(user: Any) -> bool:
    """Organisation-wide records need an explicit organisation-wide grant (or a superuser), never
    "audit on every definition that exists now": deleting a definition must not widen rights."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return False
    return holds_organisation_right(user, OrganisationGrant.Right.AUDIT)


def may_audit(user: Any) -> bool:
    return definitions_for(user, Right.AUDIT).exists()


def may_see_audit_health(user: Any) -> bool:
    """Compliance (anyone who audits) and admins see, and may acknowledge, a failed verification."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return False
    return user.is_superuser or (user.is_staff and user.has_perm("auth.change_group")) or may_audit(user)


def records_for(user: Any):
    ids = audit_definition_ids(user)
    if not ids:
        return AuditRecord.objects.none()
    scope = Q(definition_id__in=ids)
    if may_audit_everything(user):
        scope |= Q(definition_id__isnull=True)
    return AuditRecord.objects.filter(scope)


def unmask_definition_ids(user: Any) -> set[int]:
    """Definitions where ``user`` may break glass: a team grant, on a definition they may view."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return set()
    visible = set(definitions_for(user, Right.VIEW).values_list("pk", flat=True))
    if user.is_superuser:
        return visible
    granted = SensitiveDataGrant.objects.filter(team__in=user.groups.all()).values_list("definition_id", flat=True)
    return visible & set(granted)


def may_unmask(user: Any, definition_id: int | None) -> bool:
    return definition_id is not None and definition_id in unmask_definition_ids(user)
