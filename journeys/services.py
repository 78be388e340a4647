"""Services that change journeys. Each writes its events in the same transaction.

Services marked "caller holds the journey lock" expect the journey row to have been fetched
with ``select_for_update`` inside the current transaction (``lock_journey``). State changes go
through the named transitions of ``journeys.lifecycle``; these services orchestrate them.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import events
from .actions import ActionParamsError, execute
from .corebank import CoreBankRejected, CoreBankUnavailable
from .db import converting, loaded, run_statements
from .errors import IllegalTransition, JourneyError
from .lifecycle import journey as journey_lifecycle
from .lifecycle import proposal as proposal_lifecycle
from .lifecycle.journey import enqueue_turn
from .models import Agent, Event, ExceptionKind, Journey, JourneyDefinition, ProposedAction

__all__ = ["IllegalTransition", "JourneyError", "enqueue_turn"]


def lock_journey(journey_id: int) -> Journey | None:
    """The journey, its row locked until the transaction ends, with its definition, version and
    agent loaded: ``Journey.objects.select_for_update(of=("self",)).select_related("definition",
    "version", "agent")`` — built once per process as plain SQL, since every agent turn and
    every person's action starts here and Django would compile the same query each time."""
    return lock_journey_then(journey_id, [])[0]


def lock_journey_then(journey_id: int, then: list[tuple[str, list]]) -> tuple[Journey | None, list[list[tuple]]]:
    """``lock_journey``, then each statement of ``then`` in order, each seeing what committed
    while the lock was awaited; with their rows. On PostgreSQL they all go in one round trip
    (``journeys.db.run_statements``: one pipeline); elsewhere one after the other."""
    sql, parts = _lock_statement()
    journey_rows, *results = run_statements([(sql, [journey_id]), *then])
    return _loaded_journey(journey_rows[0] if journey_rows else None, parts), results


def _loaded_journey(row: tuple | None, parts: list) -> Journey | None:
    if row is None:
        return None
    instances: dict[str, Any] = {}
    for relation, model, attnames, converters, start in parts:
        values = row[start : start + len(attnames)]
        if relation and values[0] is None:  # a journey without an agent
            instances[relation] = None
            continue
        instances[relation] = loaded(model, attnames, converters, values)
    journey = instances.pop("")
    for relation, instance in instances.items():
        Journey._meta.get_field(relation).set_cached_value(journey, instance)
    return journey


@functools.cache
def _lock_statement() -> tuple[str, list[tuple[str, type, list[str], list[Any], int]]]:
    """The SQL of ``lock_journey`` and, per model it loads, the columns' place in its row."""
    quote = connection.ops.quote_name
    parts: list[tuple[str, type, list[str], list[Any], int]] = []
    columns: list[str] = []
    joins: list[str] = []
    for alias, relation in (("j", ""), ("d", "definition"), ("v", "version"), ("a", "agent")):
        model = Journey._meta.get_field(relation).related_model if relation else Journey
        fields = list(model._meta.concrete_fields)
        parts.append((relation, model, [field.attname for field in fields], converting(fields, alias), len(columns)))
        columns += [f"{alias}.{quote(field.column)}" for field in fields]
        if relation:
            link = Journey._meta.get_field(relation)
            kind = "LEFT JOIN" if link.null else "JOIN"
            joins.append(
                f"{kind} {quote(model._meta.db_table)} {alias} ON {alias}.{quote(model._meta.pk.column)} = "
                f"j.{quote(link.column)}"
            )
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Journey._meta.db_table)} j {' '.join(joins)} "
        f"WHERE j.{quote(Journey._meta.pk.column)} = %s"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF j"
    elif connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    # SQLite has no row locks: there a write transaction serialises every writer.
    return sql, parts


def default_agent() -> Agent | None:
    return Agent.objects.filter(is_enabled=True, kind=Agent.Kind.SCRIPTED).order_by("pk").first()


@transaction.atomic
def journey_start(
    *,
    definition: JourneyDefinition | str,
    customer_ref: str,
    channel: str = Journey.Channel.CHAT,
    message: str = "",
    request: dict[str, Any] | None = None,
    agent: Agent | None = None,
    parent: Journey | None = None,
    simulator: dict[str, Any] | None = None,
) -> Journey:
    if isinstance(definition, str):
        definition = JourneyDefinition.objects.get(key=definition)
    version = definition.current_version()
    if version is None:
        raise JourneyError(f"{definition.name} has no version to run.")
    now = timezone.now()
    context: dict[str, Any] = {"request": request or {}, "facts": {}, "results": {}, "guidance": []}
    if simulator:
        context["simulator"] = simulator
    journey = Journey.objects.create(
        definition=definition,
        version=version,
        customer_ref=customer_ref,
        channel=channel,
        current_step=version.start_step,
        agent=agent or default_agent(),
        sla_deadline=now + timedelta(minutes=version.sla_minutes),
        next_run_at=now,
        context=context,
        parent=parent,
    )
    events.record(
        journey,
        Event.Kind.JOURNEY_STARTED,
        f"{definition.name} started on {journey.get_channel_display().lower()} (version {version.number}).",
        data={"request": request or {}, "version": version.number, "parent": parent.pk if parent else None},
    )
    if message:
        events.record(journey, Event.Kind.MESSAGE_IN, message, actor_kind=Event.Actor.CUSTOMER)
    events.record(
        journey,
        Event.Kind.STEP_STARTED,
        f"Step “{journey.current_step_title}” started.",
        actor_kind=Event.Actor.AGENT,
        actor_agent=journey.agent,
    )
    if parent is not None:
        events.record(
            parent,
            Event.Kind.LINKED_JOURNEY,
            f"Linked {definition.name} J-{journey.pk} opened.",
            data={"journey": journey.pk},
        )
    enqueue_turn(journey)
    return journey


@transaction.atomic
def journey_customer_message(
    *, journey_id: int, text: str, data: dict[str, Any] | None = None, intent: str = "reply"
) -> Journey:
    """A message from the customer. Wakes the agent if it was waiting for one."""
    journey = lock_journey(journey_id)
    if journey is None:
        raise JourneyError("No such journey.")
    if not journey.is_live:
        raise JourneyError(f"J-{journey.pk} is {journey.get_status_display().lower()}; start a new journey.")
    events.record(
        journey,
        Event.Kind.MESSAGE_IN,
        text,
        actor_kind=Event.Actor.CUSTOMER,
        data={"intent": intent, **({"data": data} if data else {})},
    )
    journey.context["reply"] = {"text": text, "data": data or {}, "intent": intent, "at": timezone.now().isoformat()}
    if not (journey.waiting_on == Journey.WaitingOn.CUSTOMER and journey_lifecycle.wake(journey)):
        journey.save(update_fields=["context"])
    return journey


def journey_finish(
    journey: Journey,
    status: str,
    summary: str,
    *,
    actor_kind: str = Event.Actor.SYSTEM,
    actor_user: Any = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Complete, abandon or fail a journey. Caller holds the journey lock."""
    journey_lifecycle.finish(journey, status, summary, actor_kind=actor_kind, actor_user=actor_user, data=data)


def journey_hand_to_person(
    journey: Journey,
    *,
    reason: str,
    exception_kind: str,
    actor_kind: str = Event.Actor.SYSTEM,
    data: dict[str, Any] | None = None,
) -> None:
    """Route the journey to its fallback queue: a person must act. Caller holds the journey lock.

    ``exception_kind`` is an ``ExceptionKind``; a kind an outside agent made up is recorded as
    ``agent_handoff`` with its own word kept in ``data["given_kind"]``."""
    if exception_kind not in ExceptionKind.values:
        data = {**(data or {}), "given_kind": str(exception_kind)[:60]}
        exception_kind = ExceptionKind.AGENT_HANDOFF
    journey_lifecycle.to_person(journey, reason=reason, exception_kind=exception_kind, actor_kind=actor_kind, data=data)


def proposal_create(
    journey: Journey,
    *,
    action: str,
    params: dict[str, Any],
    explanation: str,
    key: str,
    agent: Agent | None = None,
    user: Any = None,
    confidence: float | None = None,
) -> ProposedAction:
    """Record a proposal and its policy decision (``journeys.lifecycle.proposal.propose``).
    Caller holds the journey lock. Raises ``ActionParamsError`` (nothing written) when the
    parameters do not fit the schema."""
    return proposal_lifecycle.propose(
        journey,
        action=action,
        params=params,
        explanation=explanation,
        key=key,
        agent=agent,
        user=user,
        confidence=confidence,
    )


def proposal_execute(proposal: ProposedAction, *, context_carried: bool = False) -> str:
    """Carry out an approved proposal, once. Caller holds the journey lock.

    Returns "executed", "failed" or "retry" (transient core-bank error; the proposal stays
    approved and the next turn tries again with the same idempotency key). The outcome goes
    into the journey's context; ``context_carried``: the caller's lifecycle transition writes
    the context (the runtime's turn), so it is not saved here on its own.
    """
    journey = proposal.journey
    try:
        result = execute(proposal)
    except CoreBankUnavailable as exc:
        events.record(
            journey,
            Event.Kind.ACTION_FAILED,
            f"{proposal.action_type.name} will be retried: {exc}",
            proposal=proposal,
            data={"transient": True, "error": str(exc)},
        )
        return "retry"
    except (CoreBankRejected, ActionParamsError) as exc:
        if proposal_lifecycle.fail(proposal, error=str(exc)):
            _remember_outcome(journey, proposal, {"status": "failed", "error": str(exc)}, save=not context_carried)
        return "failed"
    if not proposal_lifecycle.execute(proposal, result=result, summary=_result_summary(proposal, result)):
        return "executed"  # already executed by an earlier delivery; the effect happened once
    _remember_outcome(journey, proposal, {"status": "executed", "result": result}, save=not context_carried)
    if proposal.action_type.key == "send_message":
        events.record(
            journey,
            Event.Kind.MESSAGE_OUT,
            proposal.params.get("text", ""),
            actor_kind=Event.Actor.PERSON if proposal.proposed_by_user_id else Event.Actor.AGENT,
            actor_user=proposal.proposed_by_user,
            actor_agent=proposal.proposed_by_agent,
            proposal=proposal,
        )
    return "executed"


def proposal_settled(proposal: ProposedAction, *, outcome: str, reason: str = "") -> None:
    """Tell the journey a pending proposal was rejected, expired or withdrawn, and wake it.

    Called by the review app after it moved the proposal; caller holds the journey lock. The
    reason reaches the agent's context so its next turn can act on it.
    """
    journey = proposal.journey
    _remember_outcome(journey, proposal, {"status": outcome, "reason": reason})
    journey.context.setdefault("guidance", []).append(
        f"{proposal.action_type.name} was {outcome}" + (f": {reason}" if reason else ".")
    )
    journey.save(update_fields=["context"])
    journey_wake_after_decision(journey)


def journey_wake_after_decision(journey: Journey) -> None:
    """After a decision, let the agent go on once nothing is pending. Caller holds the lock."""
    if journey.status == Journey.Status.WAITING_APPROVAL:
        journey_lifecycle.wake(journey)


def _remember_outcome(
    journey: Journey, proposal: ProposedAction, outcome: dict[str, Any], *, save: bool = True
) -> None:
    if proposal.step != journey.current_step:
        return  # a late outcome of an earlier step is in the events, not in this step's results
    journey.context.setdefault("results", {})[proposal.action_type.key] = {"proposal": proposal.pk, **outcome}
    if save:
        journey.save(update_fields=["context"])


def _result_summary(proposal: ProposedAction, result: dict[str, Any]) -> str:
    name = proposal.action_type.name
    key = proposal.action_type.key
    if key == "issue_refund":
        return f"{name}: {result.get('refunded')} credited."
    if key == "block_card":
        return f"{name}: card blocked."
    if key in ("open_case", "escalate_risk"):
        return f"{name}: {result.get('case')} opened."
    if key == "order_card":
        return f"{name}: arrives {result.get('delivery_date')}."
    if key == "lookup_transactions":
        return f"{name}: {len(result.get('transactions', []))} transaction(s)."
    if key == "lookup_fees":
        return f"{name}: {len(result.get('fees', []))} fee(s) in the period."
    if key == "lookup_account":
        return f"{name}: {result.get('name')}, account {result.get('account')}."
    if key == "validate_address":
        return f"{name}: {'found' if result.get('exists') else 'not found'}."
    if key == "check_verification_code":
        return f"{name}: {'valid' if result.get('valid') else 'wrong code'}."
    if key == "lookup_account_changes":
        changes = result.get("recent_changes") or ["none"]
        return f"{name}: {', '.join(changes)}."
    return f"{name}: done."


def customer_timeout() -> timedelta:
    return timedelta(seconds=settings.HANDOFF["CUSTOMER_TIMEOUT_SECONDS"])
