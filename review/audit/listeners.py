"""Signal receivers that write the audit trail, inside the transaction of the change they see.

``journeys.events.event_recorded``: every journey event → a record on that journey's chain.
``journeys.events.governance_changed``: scopes, grants, teams, pauses → the governance chain.
``user_login_failed`` and axes' ``user_locked_out``: failed logins and lockouts → governance.
"""

from __future__ import annotations

from typing import Any

from review.models.audit import AuditRecord, journey_chain

from .chain import audit_append_prepared, audit_prepare, governance_append, is_explicitly_audited

# The outcome an event stands for, for the trail's "decision" search.
EVENT_DECISIONS = {
    AuditRecord.Kind.ACTION_APPROVED: "approved",
    AuditRecord.Kind.ACTION_REJECTED: "rejected",
    AuditRecord.Kind.ACTION_EXPIRED: "expired",
    AuditRecord.Kind.ACTION_EXECUTED: "executed",
    AuditRecord.Kind.ACTION_FAILED: "failed",
}


def record_kind(kind: str) -> AuditRecord.Kind:
    """The enumeration member for ``kind``; ``ValueError`` for a kind the trail does not know,
    so a new kind cannot be written without being searchable and named."""
    return AuditRecord.Kind(kind)


def proposal_snapshot(proposal: Any) -> dict[str, Any]:
    decided_by = proposal.decided_by.get_username() if proposal.decided_by_id else ""
    return {
        "id": proposal.pk,
        "action": proposal.action_type.key,
        "action_name": proposal.action_type.name,
        "params": proposal.params,
        "explanation": proposal.explanation,
        "confidence": proposal.confidence,
        "proposed_by": proposal.proposer_label,
        "status": proposal.status,
        "effect": proposal.decision_effect,
        "rule": proposal.decision_rule,
        "decision_explanation": proposal.decision_explanation,
        "required_approvals": proposal.required_approvals,
        "decided_by": decided_by,
        "decision_reason": proposal.decision_reason,
        "result": proposal.result,
        "error": proposal.error,
    }


def audit_event(event: Any) -> None:
    """Append the event's record to its journey's chain now, or — inside
    ``journeys.events.together()`` — prepare it now (the proposal as it is at this moment) and
    append it with the block's other records at the block's end (``on_events_written_together``)."""
    from journeys.events import current_together

    record = audit_record_for(event)
    group = current_together()
    if group is None:
        audit_append_prepared([record])
    else:
        group.stash.setdefault("audit", {})[id(event)] = record


def on_events_written_together(sender: Any, events: list[Any], stash: dict[str, Any], **kwargs: Any) -> None:
    """One lock and one head read per chain, one INSERT, for the records of a block's events
    that are still part of the transaction, in the order the events were recorded. The events
    were prepared before they were written: each record gets its event's id now."""
    prepared = stash.get("audit", {})
    records = []
    for event in events:
        record = prepared.get(id(event))
        if record is not None:
            record.event_id = event.pk
            records.append(record)
    audit_append_prepared(records, stash=stash)


def audit_record_for(event: Any) -> AuditRecord:
    journey = event.journey
    proposal = event.proposal
    data = event.data or {}
    if event.actor_user_id:
        actor = {
            "actor_label": event.actor_user.get_username(),
            "actor_user_id": event.actor_user_id,
        }
    elif event.actor_agent_id:
        actor = {"actor_label": event.actor_agent.name, "actor_agent_id": event.actor_agent_id}
    else:
        actor = {"actor_label": event.get_actor_kind_display()}
    kind = record_kind(event.kind)
    decision = EVENT_DECISIONS.get(kind, "")
    if kind == AuditRecord.Kind.ACTION_DECIDED:
        decision = str(data.get("effect", ""))
    extra: dict[str, Any] = {}
    if proposal is not None and event.kind in ("action_proposed", "action_decided"):
        # Decision provenance: who proposed it with what, and which rules judged it.
        from journeys.agents.provenance import proposal_provenance
        from review.policy import judged_rules_version

        extra["provenance"] = proposal_provenance(proposal)
        if event.kind == "action_decided":
            extra["provenance"]["rules_version"] = judged_rules_version(proposal)
    return audit_prepare(
        chain=journey_chain(journey.pk),
        kind=kind.value,
        summary=event.summary,
        actor_kind=event.actor_kind,
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        customer_ref=journey.customer_ref,
        action_type=proposal.action_type.key if proposal is not None else "",
        decision=decision,
        proposal_id=proposal.pk if proposal is not None else None,
        event_id=event.pk,
        payload={
            "step": event.step,
            "epoch": event.epoch,
            "data": data,
            "proposal": proposal_snapshot(proposal) if proposal is not None else None,
            **extra,
        },
        **actor,
    )


def on_event_recorded(sender: Any, event: Any, **kwargs: Any) -> None:
    audit_event(event)


def on_governance_changed(
    sender: Any,
    kind: str,
    actor: Any = None,
    subject: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    data = data or {}
    kind = record_kind(kind)
    definition_id = _definition_id(data)
    governance_append(
        kind=kind.value,
        summary=subject + (f" — {reason}" if reason else ""),
        actor=actor,
        definition_id=definition_id,
        payload={
            "subject": subject,
            "before": before,
            "after": after,
            "reason": reason,
            "data": data,
        },
    )


def _definition_id(data: dict[str, Any]) -> int | None:
    """The definition a governance change is about: ``definition_id``, or ``definition`` given as
    an id or as a key (a pause names its definition by key)."""
    definition_id = data.get("definition_id")
    if isinstance(definition_id, int):
        return definition_id
    definition = data.get("definition")
    if isinstance(definition, int):
        return definition
    if isinstance(definition, str) and definition:
        from journeys.models import JourneyDefinition

        return JourneyDefinition.objects.filter(key=definition).values_list("pk", flat=True).first()
    return None


def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # Django has already replaced the password with asterisks; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    governance_append(
        kind=AuditRecord.Kind.LOGIN_FAILED,
        summary=f"Failed login for “{username}”",
        actor_fields={"actor_kind": "person", "actor_label": username},
        payload={"username": username, "ip_address": _client_ip(request)},
    )


def on_locked_out(
    sender: Any,
    request: Any = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    governance_append(
        kind=AuditRecord.Kind.LOGIN_LOCKOUT,
        summary=f"Login locked out for “{username or ''}” from {ip_address or 'unknown address'}",
        actor_fields={"actor_kind": "person", "actor_label": (username or "")[:150]},
        payload={"username": username, "ip_address": ip_address},
    )


# --- grants changed by any path (Django admin, a shell, a data migration) ----------------------
# The teams page records richer before/after records itself and silences these receivers.


def _grant_fields(instance: Any) -> tuple[str, int | None, dict[str, Any]]:
    name = type(instance).__name__
    if name in ("DefinitionGroupPermission", "DefinitionUserPermission"):
        holder = (
            f"team {instance.group.name}"
            if name == "DefinitionGroupPermission"
            else (f"user {instance.user.get_username()}")
        )
        return (
            f"{instance.permission.codename} for {holder}",
            instance.content_object_id,
            {"permission": instance.permission.codename, "holder": holder},
        )
    if name == "OrganisationGrant":
        return (
            f"organisation-wide right “{instance.get_right_display()}” of team {instance.team.name}",
            None,
            {"organisation_right": instance.right, "holder": f"team {instance.team.name}"},
        )
    if name == "ApprovalLimit":
        return (
            f"approval limit of team {instance.team.name}",
            instance.definition_id,
            {"limit": str(instance.limit), "holder": f"team {instance.team.name}"},
        )
    return (
        f"unmask right of team {instance.team.name}",
        instance.definition_id,
        {"unmask": True, "holder": f"team {instance.team.name}"},
    )


def on_grant_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    if is_explicitly_audited() or kwargs.get("raw"):
        return
    what, definition_id, state = _grant_fields(instance)
    governance_append(
        kind=AuditRecord.Kind.GRANT_ADDED if created else AuditRecord.Kind.GRANT_UPDATED,
        summary=f"{'Granted' if created else 'Changed'} {what}",
        definition_id=definition_id,
        payload={"before": None if created else {}, "after": state},
    )


def on_grant_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if is_explicitly_audited():
        return
    what, definition_id, state = _grant_fields(instance)
    governance_append(
        kind=AuditRecord.Kind.GRANT_REMOVED,
        summary=f"Revoked {what}",
        definition_id=definition_id,
        payload={"before": state, "after": None},
    )


def on_membership_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    model: Any,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    if is_explicitly_audited() or action not in ("post_add", "post_remove", "pre_clear"):
        return
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    if action == "pre_clear":  # the set is gone after the clear; name it before
        pairs = (
            [(instance, g) for g in instance.groups.all()]
            if not reverse
            else [(u, instance) for u in instance.user_set.all()]
        )
        verb = "removed from"
    else:
        if reverse:  # group.user_set.add(users)
            pairs = [(u, instance) for u in get_user_model().objects.filter(pk__in=pk_set or [])]
        else:  # user.groups.add(groups)
            pairs = [(instance, g) for g in Group.objects.filter(pk__in=pk_set or [])]
        verb = "added to" if action == "post_add" else "removed from"
    for user, group in pairs:
        governance_append(
            kind=AuditRecord.Kind.MEMBERSHIP_CHANGE,
            summary=f"{user.get_username()} {verb} {group.name}",
            payload={
                "user": user.get_username(),
                "team": group.name,
                "change": "added" if verb == "added to" else "removed",
            },
        )


def _client_ip(request: Any) -> str | None:
    if request is None:
        return None
    from .request_meta import client_ip

    return client_ip(request)
