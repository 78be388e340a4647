"""Reading and applying per-definition grants of a team or an agent (service user), and a
team's organisation-wide grants.

The team permissions page (``console.teams``) and the approval of a pending grant change
(``review.services.governance``) use the same two functions, so an approved change applies
exactly what the page would have.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from journeys import rights
from journeys.models import (
    ApprovalLimit,
    DefinitionGroupPermission,
    DefinitionUserPermission,
    JourneyDefinition,
    OrganisationGrant,
)

from ..models import SensitiveDataGrant

# The grant matrix's permissions, and those whose addition a second admin must approve
# (``grant_widens``), come from the one registry of rights.
PERM_CODES = rights.PERM_CODES
GOVERNED_PERMS = rights.GOVERNED_PERMS


def grant_state(*, team: Any = None, user: Any = None) -> dict[str, dict[str, Any]]:
    """Per definition key: the permissions held, the approval limit and the unmask right."""
    state: dict[str, dict[str, Any]] = {
        d.key: {"perms": [], "limit": None, "sensitive": False} for d in JourneyDefinition.objects.all()
    }
    if team is not None:
        rows = DefinitionGroupPermission.objects.filter(group=team)
    else:
        rows = DefinitionUserPermission.objects.filter(user=user)
    for key, code in rows.values_list("content_object__key", "permission__codename"):
        if code in PERM_CODES:
            state[key]["perms"].append(code)
    if team is not None:
        for key, limit in ApprovalLimit.objects.filter(team=team).values_list("definition__key", "limit"):
            state[key]["limit"] = str(limit)
        for key in SensitiveDataGrant.objects.filter(team=team).values_list("definition__key", flat=True):
            state[key]["sensitive"] = True
    for entry in state.values():
        entry["perms"].sort(key=PERM_CODES.index)
    return state


def grant_apply(
    holder: Any,
    definition: JourneyDefinition,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    is_team: bool,
) -> None:
    """Move ``holder``'s grants on ``definition`` from ``before`` to ``after``. Caller audits."""
    for code in set(after["perms"]) - set(before["perms"]):
        assign_perm(f"journeys.{code}", holder, definition)
    for code in set(before["perms"]) - set(after["perms"]):
        remove_perm(f"journeys.{code}", holder, definition)
    if not is_team:
        return
    if after["limit"] is None:
        ApprovalLimit.objects.filter(team=holder, definition=definition).delete()
    elif after["limit"] != before["limit"]:
        ApprovalLimit.objects.update_or_create(
            team=holder, definition=definition, defaults={"limit": Decimal(after["limit"])}
        )
    if after["sensitive"] and not before["sensitive"]:
        SensitiveDataGrant.objects.get_or_create(team=holder, definition=definition)
    elif before["sensitive"] and not after["sensitive"]:
        SensitiveDataGrant.objects.filter(team=holder, definition=definition).delete()


def grant_widens(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What in a grant change needs a second admin: added approve or pause rights, an added
    unmask right, a raised approval limit. Empty when the change only narrows (or adds rights
    to view, take over, annotate or audit), so it may apply at once."""
    reasons = [
        f"adds {code.replace('_', ' ')}"
        for code in sorted(GOVERNED_PERMS & (set(after["perms"]) - set(before["perms"])))
    ]
    if after.get("sensitive") and not before.get("sensitive"):
        reasons.append("adds the unmask right")
    old, new = Decimal(before.get("limit") or 0), Decimal(after.get("limit") or 0)
    if new > old:
        reasons.append(f"raises the approval limit from {old:.2f} to {new:.2f}")
    return reasons


# --- teams, membership and saving a grant matrix (the team permissions page) ------------------


def grants_save(*, holder: Any, label: str, wanted: dict[str, dict[str, Any]], is_team: bool, actor: Any) -> list[Any]:
    """Apply a grant matrix (per definition key, as ``grant_state`` gives it). Per definition, a
    change that adds approve, unmask or pause rights or raises an approval limit waits for a
    second admin (the governance changes requested are returned); any other change applies at
    once, audited."""
    from journeys.events import governance_changed

    from ..audit.chain import explicitly_audited
    from ..models import AuditRecord
    from .governance import grant_request

    requested = []
    with transaction.atomic(), explicitly_audited():
        before_all = grant_state(team=holder) if is_team else grant_state(user=holder)
        for definition in JourneyDefinition.objects.all():
            before, after = before_all[definition.key], wanted[definition.key]
            if before == after:
                continue
            if grant_widens(before, after):
                requested.append(
                    grant_request(
                        holder=holder,
                        is_team=is_team,
                        label=label,
                        definition=definition,
                        before=before,
                        after=after,
                        maker=actor,
                    )
                )
                continue
            grant_apply(holder, definition, before, after, is_team=is_team)
            governance_changed.send(
                sender=None,
                kind=AuditRecord.Kind.GRANT_CHANGE,
                actor=actor,
                subject=f"Grants of {label} on {definition.name}",
                before=before,
                after=after,
                reason="",
                data={"definition_id": definition.pk, "holder": label, "team": is_team},
            )
    return requested


def _team_changed(*, actor: Any, subject: str, before: Any, after: Any, data: dict[str, Any]) -> None:
    from journeys.events import governance_changed

    from ..models import AuditRecord

    governance_changed.send(
        sender=None,
        kind=AuditRecord.Kind.TEAM_CHANGE,
        actor=actor,
        subject=subject,
        before=before,
        after=after,
        reason="",
        data=data,
    )


def team_members(team: Group) -> list[str]:
    return sorted(team.user_set.values_list("username", flat=True))


def team_create(*, name: str, actor: Any) -> Group:
    from ..audit.chain import explicitly_audited

    with transaction.atomic(), explicitly_audited():
        team = Group.objects.create(name=name)
        _team_changed(
            actor=actor, subject=f"Team {team.name} created", before=None, after={"team": name, "members": []}, data={}
        )
    return team


def team_membership_change(*, team: Group, user: Any, actor: Any, add: bool) -> None:
    """Add or remove one member, audited once with the membership before and after."""
    from ..audit.chain import explicitly_audited

    with transaction.atomic(), explicitly_audited():
        before = team_members(team)
        (team.user_set.add if add else team.user_set.remove)(user)
        _team_changed(
            actor=actor,
            subject=f"{user.get_username()} {'added to' if add else 'removed from'} {team.name}",
            before={"members": before},
            after={"members": team_members(team)},
            data={"team": team.name},
        )


def team_delete(*, team: Group, actor: Any) -> str:
    """Delete a team: its grants, limits and unmask rights go with it (foreign keys cascade)."""
    from ..audit.chain import explicitly_audited

    with transaction.atomic(), explicitly_audited():
        before = {"team": team.name, "members": team_members(team), "grants": grant_state(team=team)}
        name = team.name
        team.delete()
        _team_changed(actor=actor, subject=f"Team {name} deleted", before=before, after=None, data={"team": name})
    return name


# --- organisation-wide grants ---------------------------------------------------------------

ORG_RIGHTS: list[str] = [choice.value for choice in OrganisationGrant.Right]


def org_grant_state(team: Any) -> dict[str, list[str]]:
    """The organisation-wide rights ``team`` holds, in the registry's order."""
    held = set(OrganisationGrant.objects.filter(team=team).values_list("right", flat=True))
    return {"rights": [code for code in ORG_RIGHTS if code in held]}


def org_grant_apply(team: Any, before: dict[str, list[str]], after: dict[str, list[str]]) -> None:
    """Move ``team``'s organisation-wide grants from ``before`` to ``after``. Caller audits."""
    for code in set(after["rights"]) - set(before["rights"]):
        OrganisationGrant.objects.get_or_create(team=team, right=code)
    removed = set(before["rights"]) - set(after["rights"])
    if removed:
        OrganisationGrant.objects.filter(team=team, right__in=removed).delete()


def org_grant_widens(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Every added organisation-wide right needs a second admin: each reaches across every
    definition (all organisation-wide audit records, or the stop button for every agent).
    Empty when the change only removes rights, so it may apply at once."""
    labels = dict(OrganisationGrant.Right.choices)
    return [f"adds “{labels[code]}”" for code in ORG_RIGHTS if code in set(after["rights"]) - set(before["rights"])]
