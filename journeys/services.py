"""Services that change journeys. Each writes its events in the same transaction.

Services marked "caller holds the journey lock" expect the journey row to have been fetched
with ``select_for_update`` inside the current transaction (``lock_journey``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import events
from .actions import ActionParamsError, execute, validate_params
from .corebank import CoreBankRejected, CoreBankUnavailable
from .models import ActionType, Agent, Event, Journey, JourneyDefinition, ProposedAction
from .policy import decide


class JourneyError(Exception):
    """A request that the journey's state does not allow; the message is for people."""


def lock_journey(journey_id: int) -> Journey | None:
    return (
        Journey.objects.select_for_update(of=("self",))
        .select_related("definition", "version", "agent")
        .filter(pk=journey_id)
        .first()
    )


def enqueue_turn(journey: Journey, *, countdown: float | None = None) -> None:
    """Schedule the journey's next agent turn once the current transaction commits."""
    from .tasks import run_step

    args = (journey.pk, journey.epoch, journey.turn_seq)
    if countdown:
        transaction.on_commit(lambda: run_step.apply_async(args=args, countdown=countdown))
    else:
        transaction.on_commit(lambda: run_step.delay(*args))


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
    fields = ["context", "updated_at"]
    if journey.status == Journey.Status.RUNNING and journey.waiting_on == Journey.WaitingOn.CUSTOMER:
        journey.waiting_on = Journey.WaitingOn.NOTHING
        journey.next_run_at = timezone.now()
        journey.state_changed_at = timezone.now()
        fields += ["waiting_on", "next_run_at", "state_changed_at"]
        journey.save(update_fields=fields)
        enqueue_turn(journey)
    else:
        journey.save(update_fields=fields)
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
    kind = {
        Journey.Status.COMPLETED: Event.Kind.COMPLETED,
        Journey.Status.ABANDONED: Event.Kind.ABANDONED,
        Journey.Status.FAILED: Event.Kind.FAILED,
    }[status]
    now = timezone.now()
    journey.status = status
    journey.waiting_on = Journey.WaitingOn.NOTHING
    journey.finished_at = now
    journey.state_changed_at = now
    journey.next_run_at = None
    journey.lease_token, journey.lease_until = "", None
    journey.save()
    for pending in journey.proposals.pending():
        proposal_transition(pending, to=ProposedAction.Status.WITHDRAWN, decision_reason="Journey finished.")
    events.record(
        journey,
        kind,
        summary,
        actor_kind=actor_kind,
        actor_user=actor_user,
        actor_agent=journey.agent if actor_kind == Event.Actor.AGENT else None,
        data=data,
    )


def journey_hand_to_person(
    journey: Journey,
    *,
    reason: str,
    exception_kind: str,
    actor_kind: str = Event.Actor.SYSTEM,
    data: dict[str, Any] | None = None,
) -> None:
    """Route the journey to its fallback queue: a person must act. Caller holds the journey lock."""
    now = timezone.now()
    journey.status = Journey.Status.HUMAN
    journey.waiting_on = Journey.WaitingOn.NOTHING
    journey.needs_person_reason = reason[:200]
    journey.state_changed_at = now
    journey.next_run_at = None
    journey.lease_token, journey.lease_until = "", None
    journey.save()
    queue = journey.definition.fallback_queue or "the fallback queue"
    events.record(
        journey,
        Event.Kind.HANDED_TO_PERSON,
        f"Handed to {queue}: {reason}",
        actor_kind=actor_kind,
        actor_agent=journey.agent if actor_kind == Event.Actor.AGENT else None,
        data={"reason": reason, "exception_kind": exception_kind},
    )
    events.record(journey, Event.Kind.EXCEPTION, reason, data={"kind": exception_kind, **(data or {})})


def proposal_transition(
    proposal: ProposedAction, *, to: str, from_statuses: list[str] | None = None, **fields: Any
) -> bool:
    """Move a proposal to ``to`` only if it is still in one of ``from_statuses``.

    A conditional UPDATE, so two concurrent deciders have exactly one winner; returns whether
    this caller won. Raises ``JourneyError`` for a transition the lifecycle never allows.
    """
    allowed_from = from_statuses or [s for s, targets in ProposedAction.TRANSITIONS.items() if to in targets]
    for source in allowed_from:
        if to not in ProposedAction.TRANSITIONS.get(source, set()):
            raise JourneyError(f"A proposal cannot go from {source} to {to}.")
    updated = ProposedAction.objects.filter(pk=proposal.pk, status__in=allowed_from).update(status=to, **fields)
    if updated:
        proposal.status = to
        for name, value in fields.items():
            setattr(proposal, name, value)
    return bool(updated)


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
    """Record a proposal and its policy decision. Caller holds the journey lock.

    Raises ``ActionParamsError`` (nothing written) when the parameters do not fit the schema.
    """
    clean = validate_params(action, params)
    proposal = ProposedAction.objects.create(
        journey=journey,
        action_type=ActionType.objects.get(key=action),
        params=clean,
        explanation=explanation,
        confidence=confidence,
        proposed_by_agent=agent,
        proposed_by_user=user,
        step=journey.current_step,
        epoch=journey.epoch,
        idempotency_key=key,
    )
    actor = (
        {"actor_kind": Event.Actor.PERSON, "actor_user": user}
        if user
        else {"actor_kind": Event.Actor.AGENT, "actor_agent": agent}
    )
    events.record(
        journey,
        Event.Kind.ACTION_PROPOSED,
        f"{proposal.action_type.name}: {explanation}",
        proposal=proposal,
        data={"action": action, "params": clean},
        **actor,
    )
    decision = decide(proposal)
    status = {
        ProposedAction.Effect.ALLOW: ProposedAction.Status.AUTO_APPROVED,
        ProposedAction.Effect.DENY: ProposedAction.Status.DENIED,
    }.get(decision.effect, ProposedAction.Status.PENDING)
    proposal_transition(
        proposal,
        to=status,
        decision_effect=decision.effect,
        decision_rule=decision.rule[:200],
        decision_explanation=decision.explanation,
        required_approvals=decision.required_approvals,
        expires_at=decision.expires_at,
        decided_at=timezone.now() if status != ProposedAction.Status.PENDING else None,
    )
    events.record(
        journey,
        Event.Kind.ACTION_DECIDED,
        decision.explanation,
        proposal=proposal,
        data={"effect": decision.effect, "rule": decision.rule, "status": status},
    )
    return proposal


def proposal_execute(proposal: ProposedAction) -> str:
    """Carry out an approved proposal, once. Caller holds the journey lock.

    Returns "executed", "failed" or "retry" (transient core-bank error; the proposal stays
    approved and the next turn tries again with the same idempotency key).
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
        proposal_transition(proposal, to=ProposedAction.Status.FAILED, error=str(exc), executed_at=timezone.now())
        _remember_outcome(journey, proposal, {"status": "failed", "error": str(exc)})
        events.record(
            journey,
            Event.Kind.ACTION_FAILED,
            f"{proposal.action_type.name} failed: {exc}",
            proposal=proposal,
            data={"transient": False, "error": str(exc)},
        )
        return "failed"
    if not proposal_transition(proposal, to=ProposedAction.Status.EXECUTED, result=result, executed_at=timezone.now()):
        return "executed"  # already executed by an earlier delivery; the effect happened once
    _remember_outcome(journey, proposal, {"status": "executed", "result": result})
    events.record(
        journey,
        Event.Kind.ACTION_EXECUTED,
        _result_summary(proposal, result),
        proposal=proposal,
        data={"result": result},
    )
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
    journey.save(update_fields=["context", "updated_at"])
    journey_wake_after_decision(journey)


def journey_wake_after_decision(journey: Journey) -> None:
    """After a decision, let the agent go on once nothing is pending. Caller holds the lock."""
    if journey.status != Journey.Status.WAITING_APPROVAL or journey.proposals.pending().exists():
        return
    journey.status = Journey.Status.RUNNING
    journey.waiting_on = Journey.WaitingOn.NOTHING
    journey.next_run_at = timezone.now()
    journey.state_changed_at = timezone.now()
    journey.save()
    enqueue_turn(journey)


def _remember_outcome(journey: Journey, proposal: ProposedAction, outcome: dict[str, Any]) -> None:
    if proposal.step != journey.current_step:
        return  # a late outcome of an earlier step is in the events, not in this step's results
    journey.context.setdefault("results", {})[proposal.action_type.key] = {"proposal": proposal.pk, **outcome}
    journey.save(update_fields=["context", "updated_at"])


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
