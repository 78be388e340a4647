"""Maker-checker on governance itself.

A change to a permission scope or a cumulative limit, a grant that adds approve, unmask or
pause rights or raises an approval limit, and any added organisation-wide right, is *requested*
by one admin (the maker) and *takes effect* only when a second admin (the checker) approves it.
Changes that only narrow what anyone may do apply at once (``scope_only_narrows``,
``limit_only_narrows``, ``grants.grant_widens``, ``grants.org_grant_widens``).

Every move out of ``pending`` is one conditional UPDATE (``… WHERE status = 'pending' AND
maker <> checker AND expires_at > now``), so two admins approving at once have exactly one
winner, and the database refuses a maker as checker (``governance_change_four_eyes``). The
approval applies the change in the same transaction, after checking the target still is what
the maker saw (a change requested against a rule that has changed since is refused). Every
request and decision is announced on ``journeys.events.governance_changed`` for the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.forms import ModelForm
from django.http import QueryDict
from django.utils import timezone

from journeys.events import governance_changed
from journeys.models import JourneyDefinition
from review.audit.chain import explicitly_audited

from ..access import may_manage_teams
from ..models import CumulativeLimit, GovernanceChange, PermissionScope, ScopeChange
from ..models.scopes import STRICTNESS
from .grants import (
    ORG_RIGHTS,
    grant_apply,
    grant_state,
    org_grant_apply,
    org_grant_state,
    org_grant_widens,
    team_members,
)
from .scopes import Governed, ScopeError, _save, _set_enabled

Status = GovernanceChange.Status
Kind = GovernanceChange.Kind


class GovernanceError(Exception):
    """A governance decision that cannot be made; the message is for the admin."""


def _ttl() -> timedelta:
    return timedelta(hours=float(settings.HANDOFF.get("GOVERNANCE_CHANGE_HOURS", 72)))


# --- what only narrows ------------------------------------------------------------------------


def scope_only_narrows(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether a scope change can only make decisions stricter, so it may apply at once.

    A new or re-enabled *deny* rule, a rule made stricter (its effect, nothing else that decides
    what it matches), a renamed or re-described rule, and any change to a rule that stays
    disabled. Everything else — a new allowing rule, new conditions, another target, disabling
    a rule (another, laxer rule may then win) — needs a second admin.
    """
    if before is None:
        return after["effect"] == "deny" or not after["is_enabled"]
    if not before["is_enabled"] and not after["is_enabled"]:
        return True
    if before["is_enabled"] and not after["is_enabled"]:
        return False
    cosmetic = {"name", "description", "effect", "is_enabled"}
    if any(before.get(k) != after.get(k) for k in set(before) | set(after) if k not in cosmetic):
        return False
    if not before["is_enabled"]:  # being enabled: only a deny rule cannot widen anything
        return after["effect"] == "deny"
    return STRICTNESS[after["effect"]] >= STRICTNESS[before["effect"]]


def limit_only_narrows(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether a cumulative-limit change can only make decisions stricter: a new or re-enabled
    limit (a limit never allows anything), a lower maximum, a longer window, a stricter effect
    when exceeded, a new name. Disabling a limit, or changing what or whom it counts, widens."""
    if before is None:
        return True
    if not before["is_enabled"] and not after["is_enabled"]:
        return True
    if before["is_enabled"] and not after["is_enabled"]:
        return False
    adjustable = {"name", "maximum", "window_minutes", "effect_when_exceeded", "is_enabled"}
    if any(before.get(k) != after.get(k) for k in set(before) | set(after) if k not in adjustable):
        return False
    return (
        float(after["maximum"]) <= float(before["maximum"])
        and after["window_minutes"] >= before["window_minutes"]
        and STRICTNESS[after["effect_when_exceeded"]] >= STRICTNESS[before["effect_when_exceeded"]]
    )


def _only_narrows(kind: str, before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    return scope_only_narrows(before, after) if kind == Kind.SCOPE else limit_only_narrows(before, after)


# --- requesting -------------------------------------------------------------------------------


def governance_request(
    *,
    kind: str,
    target_id: int | None,
    subject: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    payload: dict[str, Any],
    reason: str,
    maker: Any,
    definition_id: int | None = None,
) -> GovernanceChange:
    """Record a change that waits for a second admin. Caller is inside a transaction."""
    now = timezone.now()
    change = GovernanceChange.objects.create(
        kind=kind,
        target_id=target_id,
        subject=subject[:300],
        before=before,
        after=after,
        payload=payload,
        reason=reason,
        maker=maker,
        created_at=now,
        expires_at=now + _ttl(),
    )
    governance_changed.send(
        sender=GovernanceChange,
        kind="governance_requested",
        actor=maker,
        subject=f"Requested: {change.subject} (waits for a second admin)",
        before=before,
        after=after,
        reason=reason,
        data={"governance_change": change.pk, "change_kind": kind, "definition_id": definition_id},
    )
    return change


def _form_payload(form: ModelForm) -> dict[str, Any]:
    """The submitted form data, to re-bind at approval (so it is validated again then)."""
    data = form.data
    fields = [name for name in form.fields if name in data]  # no CSRF token or button names
    return {"form": {k: data.getlist(k) if hasattr(data, "getlist") else data[k] for k in fields}}


@transaction.atomic
def rule_submit(
    *, form: ModelForm, actor: Any, reason: str
) -> tuple[Governed | None, ScopeChange | None, GovernanceChange | None]:
    """Create or edit a scope or limit from a valid form: applied at once when it only narrows
    (returns the rule and its history entry), otherwise requested for a second admin (returns
    the pending change). Raises ``ScopeError``."""
    reason = (reason or "").strip()
    if not reason:
        raise ScopeError("Say why you change the rule; the reason is kept with the change.")
    model = form._meta.model
    kind = Kind.SCOPE if model is PermissionScope else Kind.LIMIT
    before = None
    if form.instance.pk:
        before = model.objects.select_for_update().order_by().get(pk=form.instance.pk).snapshot()
    after = form.save(commit=False).snapshot()
    if before == after:
        return form.instance if form.instance.pk else None, None, None
    if _only_narrows(kind, before, after):
        obj, entry = _save(form, actor=actor, reason=reason)
        return obj, entry, None
    noun = "permission scope" if kind == Kind.SCOPE else "cumulative limit"
    verb = "change" if before else "create"
    pending = governance_request(
        kind=kind,
        target_id=form.instance.pk,
        subject=f"{verb} {noun} '{after['name']}'",
        before=before,
        after=after,
        payload=_form_payload(form),
        reason=reason,
        maker=actor,
    )
    return None, None, pending


@transaction.atomic
def rule_toggle_submit(
    *, model: type[Governed], pk: int, enabled: bool, actor: Any, reason: str
) -> tuple[Governed | None, GovernanceChange | None]:
    """Enable or disable a scope or limit: at once when that only narrows, else requested."""
    reason = (reason or "").strip()
    if not reason:
        raise ScopeError("Say why you " + ("enable" if enabled else "disable") + " the rule.")
    obj = model.objects.select_for_update().order_by().filter(pk=pk).first()
    if obj is None:
        raise ScopeError("No such rule.")
    if obj.is_enabled == enabled:
        raise ScopeError(f"'{obj.name}' is already {'enabled' if enabled else 'disabled'}.")
    kind = Kind.SCOPE if model is PermissionScope else Kind.LIMIT
    before = obj.snapshot()
    after = {**before, "is_enabled": enabled}
    if _only_narrows(kind, before, after):
        return _set_enabled(model, pk, enabled=enabled, actor=actor, reason=reason), None
    noun = "permission scope" if kind == Kind.SCOPE else "cumulative limit"
    pending = governance_request(
        kind=kind,
        target_id=pk,
        subject=f"{'enable' if enabled else 'disable'} {noun} '{obj.name}'",
        before=before,
        after=after,
        payload={"enabled": enabled},
        reason=reason,
        maker=actor,
    )
    return None, pending


def grant_request(
    *, holder: Any, is_team: bool, label: str, definition: JourneyDefinition, before: dict, after: dict, maker: Any
) -> GovernanceChange:
    """Request a widening grant change (caller inside a transaction)."""
    return governance_request(
        kind=Kind.GRANT,
        target_id=definition.pk,
        subject=f"grants of {label} on {definition.name}",
        before=before,
        after=after,
        payload={"holder_id": holder.pk, "is_team": is_team, "label": label},
        reason="",
        maker=maker,
        definition_id=definition.pk,
    )


def _org_label(team: Group) -> str:
    return f"organisation-wide rights of team {team.name}"


@transaction.atomic
def org_grant_submit(
    *, team: Group, rights: list[str], actor: Any, reason: str
) -> tuple[dict[str, list[str]] | None, GovernanceChange | None]:
    """Set ``team``'s organisation-wide rights to ``rights``: removing rights applies at once
    (audited; returns the new state), adding any right is requested for a second admin (returns
    the pending change; nothing is granted until it is approved). Only team admins may ask.
    Raises ``GovernanceError``."""
    if not may_manage_teams(actor):
        raise GovernanceError("Only an admin of teams may change organisation-wide rights.")
    reason = (reason or "").strip()
    if not reason:
        raise GovernanceError("Say why you change the organisation-wide rights; the reason is kept with the change.")
    unknown = sorted(set(rights) - set(ORG_RIGHTS))
    if unknown:
        raise GovernanceError(f"No such organisation-wide right: {', '.join(unknown)}.")
    team = Group.objects.select_for_update().get(pk=team.pk)
    before = org_grant_state(team)
    after = {"rights": [code for code in ORG_RIGHTS if code in set(rights)]}
    if before == after:
        return before, None
    if not org_grant_widens(before, after):
        with explicitly_audited():
            org_grant_apply(team, before, after)
            governance_changed.send(
                sender=None,
                kind="grant_change",
                actor=actor,
                subject=_org_label(team).capitalize(),
                before=before,
                after=after,
                reason=reason,
                data={"holder": f"team {team.name}", "team": True, "organisation_wide": True},
            )
        return after, None
    with explicitly_audited():
        pending = governance_request(
            kind=Kind.ORG_GRANT,
            target_id=team.pk,
            subject=_org_label(team),
            before=before,
            after=after,
            payload={"team_id": team.pk, "label": f"team {team.name}"},
            reason=reason,
            maker=actor,
        )
    return None, pending


def governed_rights_held(team: Group) -> list[str]:
    """The rights ``team`` holds whose grant waits for a second admin: its organisation-wide
    rights, and per definition approve, pause, unmask and an approval limit. A person joining the
    team gains every one of them."""
    from journeys.rights import Right

    governed_codes = {right.codename for right in Right if right.governed and right.codename}
    held = [f"organisation-wide {right}" for right in org_grant_state(team)["rights"]]
    for key, entry in grant_state(team=team).items():
        held += [f"{code} on {key}" for code in entry["perms"] if code in governed_codes]
        if entry["sensitive"]:
            held.append(f"unmask on {key}")
        if entry["limit"] is not None:
            held.append(f"approval limit {entry['limit']} on {key}")
    return held


def _listed(items: list[str], most: int = 3) -> str:
    shown = ", ".join(items[:most])
    return f"{shown} and {len(items) - most} more" if len(items) > most else shown


def _membership_snapshot(team: Group) -> dict[str, Any]:
    return {"members": team_members(team), **org_grant_state(team), "governed": governed_rights_held(team)}


@transaction.atomic
def org_member_request(*, team: Group, user: Any, actor: Any) -> GovernanceChange | None:
    """A person joining a team that holds governed rights gains them (``governed_rights_held``:
    organisation-wide rights, approve, pause, unmask, an approval limit): the addition is
    requested for a second admin (returns the pending change). Returns None, changing nothing,
    when the team holds none of them — the caller then adds the member itself.
    Raises ``GovernanceError``."""
    if not may_manage_teams(actor):
        raise GovernanceError("Only an admin of teams may change a team's members.")
    team = Group.objects.select_for_update().get(pk=team.pk)
    held = governed_rights_held(team)
    if not held:
        return None
    before = _membership_snapshot(team)
    if user.get_username() in before["members"]:
        raise GovernanceError(f"{user.get_username()} is already in {team.name}.")
    after = {**before, "members": sorted([*before["members"], user.get_username()])}
    with explicitly_audited():
        return governance_request(
            kind=Kind.ORG_GRANT,
            target_id=team.pk,
            subject=f"add {user.get_username()} to team {team.name} ({_listed(held)})"[:300],
            before=before,
            after=after,
            payload={"team_id": team.pk, "member_id": user.pk, "label": f"team {team.name}"},
            reason=f"{user.get_username()} gains the governed rights of {team.name}",
            maker=actor,
        )


# --- deciding ---------------------------------------------------------------------------------


def _why_not(change_id: int, user: Any) -> str:
    change = GovernanceChange.objects.filter(pk=change_id).select_related("checker").first()
    if change is None:
        return "No such change."
    if change.status == Status.PENDING and change.maker_id == user.pk:
        return "You requested this change; a second admin must approve it (four-eyes)."
    if change.status == Status.PENDING:
        return "This change has expired; nothing was applied."
    who = f" by {change.checker.get_username()}" if change.checker_id else ""
    return f"This change was already {change.get_status_display().lower()}{who}. Nothing was changed."


def _decide(change_id: int, user: Any, *, to: str, reason: str) -> GovernanceChange:
    """The one-winner move out of pending: a conditional UPDATE, checked by its row count."""
    now = timezone.now()
    qs = GovernanceChange.objects.filter(pk=change_id, status=Status.PENDING, expires_at__gt=now)
    if to == Status.APPROVED:
        qs = qs.exclude(maker=user)
    # A maker rejecting their own request withdraws it: no checker (four-eyes holds in the table).
    checker = (
        None if to == Status.REJECTED and GovernanceChange.objects.filter(pk=change_id, maker=user).exists() else user
    )
    if checker is None:
        reason = f"Withdrawn by {user.get_username()}: {reason}"
    updated = qs.update(status=to, checker=checker, decided_at=now, decision_reason=reason)
    if not updated:
        raise GovernanceError(_why_not(change_id, user))
    return GovernanceChange.objects.select_related("maker").get(pk=change_id)


def _stale() -> GovernanceError:
    return GovernanceError(
        "The rule has changed since this was requested, so the before it shows is no longer true. "
        "Reject it and request the change again."
    )


def _apply_rule(change: GovernanceChange, checker: Any) -> str:
    from review.forms import LimitForm, ScopeForm  # forms import the models; services stay light

    model = PermissionScope if change.kind == Kind.SCOPE else CumulativeLimit
    applied_reason = (
        f"{change.reason} (requested by {change.maker.get_username()}, approved by {checker.get_username()})"
    )
    if "enabled" in change.payload:
        current = model.objects.select_for_update().order_by().filter(pk=change.target_id).first()
        if current is None or current.snapshot() != change.before:
            raise _stale()
        _set_enabled(model, current.pk, enabled=bool(change.payload["enabled"]), actor=checker, reason=applied_reason)
        return current.name
    instance = None
    if change.target_id is not None:
        instance = model.objects.select_for_update().order_by().filter(pk=change.target_id).first()
        if instance is None or instance.snapshot() != change.before:
            raise _stale()
    data = QueryDict(mutable=True)
    for key, values in change.payload.get("form", {}).items():
        data.setlist(key, values if isinstance(values, list) else [values])
    form = (ScopeForm if model is PermissionScope else LimitForm)(data, instance=instance)
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        raise GovernanceError(f"The requested change no longer validates ({errors}); reject it.")
    obj, _ = _save(form, actor=checker, reason=applied_reason)
    return obj.name


def _apply_grant(change: GovernanceChange, checker: Any) -> str:
    payload = change.payload
    if payload.get("is_team"):
        holder = Group.objects.select_for_update().filter(pk=payload["holder_id"]).first()
    else:
        holder = get_user_model().objects.select_for_update().filter(pk=payload["holder_id"]).first()
    definition = JourneyDefinition.objects.filter(pk=change.target_id).first()
    if holder is None or definition is None:
        raise GovernanceError("The team, agent or journey definition of this change no longer exists; reject it.")
    is_team = bool(payload.get("is_team"))
    current = (grant_state(team=holder) if is_team else grant_state(user=holder))[definition.key]
    if current != change.before:
        raise GovernanceError(
            "The grants have changed since this was requested, so the before it shows is no longer true. "
            "Reject it and request the change again."
        )
    grant_apply(holder, definition, change.before, change.after, is_team=is_team)
    governance_changed.send(
        sender=None,
        kind="grant_change",
        actor=checker,
        subject=f"Grants of {payload.get('label', '')} on {definition.name}",
        before=change.before,
        after=change.after,
        reason=f"requested by {change.maker.get_username()}, approved by {checker.get_username()}",
        data={
            "definition_id": definition.pk,
            "holder": payload.get("label", ""),
            "team": is_team,
            "governance_change": change.pk,
            "maker": change.maker.get_username(),
        },
    )
    return change.subject


def _apply_org_grant(change: GovernanceChange, checker: Any) -> str:
    if not may_manage_teams(checker):
        raise GovernanceError("Only an admin of teams may approve organisation-wide rights.")
    team = Group.objects.select_for_update().filter(pk=change.target_id).first()
    if team is None:
        raise GovernanceError("The team of this change no longer exists; reject it.")
    if "member_id" in change.payload:
        return _apply_org_member(change, team, checker)
    if org_grant_state(team) != change.before:
        raise GovernanceError(
            "The team's organisation-wide rights have changed since this was requested, so the before it "
            "shows is no longer true. Reject it and request the change again."
        )
    org_grant_apply(team, change.before, change.after)
    governance_changed.send(
        sender=None,
        kind="grant_change",
        actor=checker,
        subject=_org_label(team).capitalize(),
        before=change.before,
        after=change.after,
        reason=(f"{change.reason} (requested by {change.maker.get_username()}, approved by {checker.get_username()})"),
        data={
            "holder": f"team {team.name}",
            "team": True,
            "organisation_wide": True,
            "governance_change": change.pk,
            "maker": change.maker.get_username(),
        },
    )
    return change.subject


def _apply_org_member(change: GovernanceChange, team: Group, checker: Any) -> str:
    member = get_user_model().objects.filter(pk=change.payload["member_id"], is_active=True).first()
    if member is None:
        raise GovernanceError("The person of this change no longer exists or is inactive; reject it.")
    if _membership_snapshot(team) != change.before:
        raise GovernanceError(
            "The team's members or governed rights have changed since this was requested, so the "
            "before it shows is no longer true. Reject it and request the change again."
        )
    team.user_set.add(member)
    governance_changed.send(
        sender=None,
        kind="team_change",
        actor=checker,
        subject=f"{member.get_username()} added to {team.name}",
        before={"members": change.before["members"]},
        after={"members": team_members(team)},
        reason=f"requested by {change.maker.get_username()}, approved by {checker.get_username()}",
        data={"team": team.name, "governance_change": change.pk, "maker": change.maker.get_username()},
    )
    return change.subject


def governance_approve(*, change_id: int, user: Any, reason: str = "") -> GovernanceChange:
    """Approve and apply a pending change as its checker. Raises ``GovernanceError``."""
    with transaction.atomic(), explicitly_audited():
        change = _decide(change_id, user, to=Status.APPROVED, reason=(reason or "").strip())
        try:
            if change.kind == Kind.GRANT:
                _apply_grant(change, user)
            elif change.kind == Kind.ORG_GRANT:
                _apply_org_grant(change, user)
            else:
                _apply_rule(change, user)
        except ScopeError as exc:
            raise GovernanceError(str(exc)) from None
        _announce(change, user, "governance_approved", "Approved")
        return change


def governance_reject(*, change_id: int, user: Any, reason: str) -> GovernanceChange:
    """Reject a pending change (its maker may withdraw it this way). Raises ``GovernanceError``."""
    reason = (reason or "").strip()
    if not reason:
        raise GovernanceError("A rejection needs a reason; the requester reads it.")
    with transaction.atomic(), explicitly_audited():
        change = _decide(change_id, user, to=Status.REJECTED, reason=reason)
        _announce(change, user, "governance_rejected", "Rejected")
        return change


def _announce(change: GovernanceChange, actor: Any, kind: str, verb: str) -> None:
    governance_changed.send(
        sender=GovernanceChange,
        kind=kind,
        actor=actor,
        subject=f"{verb}: {change.subject} (requested by {change.maker.get_username()})",
        before=change.before,
        after=change.after,
        reason=change.decision_reason,
        data={
            "governance_change": change.pk,
            "change_kind": change.kind,
            "maker": change.maker.get_username(),
            "definition_id": change.target_id if change.kind == Kind.GRANT else None,
        },
    )


def governance_expire(*, now: datetime | None = None) -> int:
    """Expire every pending change past its time (beat). Each row moves by its own conditional
    UPDATE, so a concurrent approval and the expiry have one winner. Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    for pk in GovernanceChange.objects.filter(status=Status.PENDING, expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic(), explicitly_audited():
            moved = GovernanceChange.objects.filter(pk=pk, status=Status.PENDING, expires_at__lte=now).update(
                status=Status.EXPIRED, decided_at=now
            )
            if moved:
                change = GovernanceChange.objects.select_related("maker").get(pk=pk)
                _announce(change, None, "governance_expired", "Expired")
                expired += 1
    return expired


def pending_changes():
    return GovernanceChange.objects.filter(status=Status.PENDING, expires_at__gt=timezone.now())


__all__ = [
    "GovernanceError",
    "governance_approve",
    "governance_expire",
    "governance_reject",
    "governance_request",
    "grant_request",
    "limit_only_narrows",
    "org_grant_submit",
    "org_member_request",
    "pending_changes",
    "rule_submit",
    "rule_toggle_submit",
    "scope_only_narrows",
]
