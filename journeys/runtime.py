"""The agent runtime: one agent turn at a time, fenced by epoch, deduplicated by turn number.

A turn runs in three phases so that a takeover never waits for a slow agent and a slow agent
never lands a result after a takeover:

A. (locked) check the task is still current: same ``epoch`` (else record that it was dropped),
   same ``turn_seq`` (else it is a duplicate delivery: do nothing), the journey is the agent's to
   run and no live worker holds its lease. Take the lease and count the start; a turn started
   ``QUARANTINE_AFTER_STARTS`` times without finishing is quarantined to a person. In the common
   case, when nothing stands in the way, all of that is one conditional UPDATE without a
   transaction (``lifecycle.journey.begin_turn_at_once``); otherwise the locked path says why.
B. (unlocked) ask the agent adapter for its turn.
C. (locked) check epoch, turn and lease again, then apply the turn: proposals through the policy
   seam, allowed ones executed once (idempotency key per proposal), events, the next turn
   enqueued after commit.

Approved proposals waiting to be executed are executed first, before the agent is asked again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import events, pause_gate
from .actions import ActionParamsError
from .agents import AgentError, AgentTransientError, Snapshot, Turn, adapter_for
from .db import opening_reads
from .lifecycle import journey as lifecycle
from .models import AgentPause, Event, ExceptionKind, Journey, ProposedAction
from .services import (
    JourneyError,
    customer_timeout,
    journey_finish,
    journey_hand_to_person,
    journey_start,
    lock_journey,
    lock_journey_then,
    proposal_create,
    proposal_execute,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    snapshot: Snapshot | None  # None: approved proposals to execute, no agent call
    kind: str
    # The stop button's gates of this journey's turn as it began (``pause_gate.gates_for_turn``):
    # the locked phase takes them in the round trip that locks the journey.
    gates: tuple[str, ...] = ()


def _conf(name: str) -> Any:
    return settings.HANDOFF[name]


def _phase(func: Callable[..., Any]) -> Callable[..., Any]:
    """A locked phase of a turn: one transaction, whose events' audit records are appended
    together at its end (``events.together``: one chain lock and head read, one INSERT)."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with transaction.atomic(), events.together():
            return func(*args, **kwargs)

    return run


def run_turn(journey_id: int, epoch: int, turn_seq: int, *, token: str) -> str:
    """Run one agent turn. Returns a short word saying what happened (for logs and tests)."""
    started = _begin_at_once(journey_id, epoch, turn_seq, token) or _begin(journey_id, epoch, turn_seq, token)
    if isinstance(started, str):
        return started
    gates = started.gates
    if started.snapshot is None:
        return _execute_ready(journey_id, epoch, turn_seq, token, gates)
    journey_agent_kind = started.kind
    try:
        turn = adapter_for(journey_agent_kind).next_turn(started.snapshot)
    except AgentTransientError as exc:
        return _fail_transient(journey_id, epoch, turn_seq, token, str(exc), type(exc).__name__, gates)
    except AgentError as exc:
        return _fail_permanent(journey_id, epoch, turn_seq, token, str(exc), type(exc).__name__, gates)
    except Exception as exc:  # an agent bug must not stall the journey
        log.exception("agent crashed on journey %s", journey_id)
        error = f"{type(exc).__name__}: {exc}"
        return _fail_permanent(journey_id, epoch, turn_seq, token, error, type(exc).__name__, gates)
    return _apply(journey_id, epoch, turn_seq, token, turn, gates)


def _current(journey: Journey | None, epoch: int, turn_seq: int, phase: str) -> str | None:
    """Why this task must not act on the journey, or None when it may. Records a dropped turn."""
    if journey is None:
        return "missing"
    if journey.epoch != epoch:
        events.record(
            journey,
            Event.Kind.TURN_DROPPED,
            f"An agent turn scheduled at epoch {epoch} was dropped {phase}: the journey is at epoch "
            f"{journey.epoch} (taken over or handed back since).",
            data={"task_epoch": epoch, "journey_epoch": journey.epoch, "turn": turn_seq, "phase": phase},
        )
        return "stale"
    if journey.turn_seq != turn_seq:
        return "duplicate"
    return None


def _begin_at_once(journey_id: int, epoch: int, turn_seq: int, token: str) -> Started | None:
    """Phase A in one statement when nothing stands in the way (``lifecycle.begin_turn_at_once``);
    None sends the turn through ``_begin``, which takes the lock and says why not."""
    now = timezone.now()
    taken = lifecycle.begin_turn_at_once(
        journey_id,
        epoch=epoch,
        turn_seq=turn_seq,
        token=token,
        now=now,
        until=now + timedelta(seconds=_conf("STEP_LEASE_SECONDS")),
        max_starts=_conf("QUARANTINE_AFTER_STARTS"),
        max_turns=_conf("MAX_TURNS"),
    )
    if taken is None:
        return None
    if taken.ready_to_execute:
        return Started(snapshot=None, kind="", gates=_gates(taken.definition_id, taken.agent_id))
    return _started(journey_id, turn_seq, taken)


def _gates(definition_id: int | None, agent_id: int | None) -> tuple[str, ...]:
    if definition_id is None:
        return ()
    return tuple(pause_gate.gates_for_turn(definition_id=definition_id, agent_id=agent_id))


def _started(journey_id: int, turn_seq: int, taken: lifecycle.TurnTaken) -> Started:
    """The agent's turn begins: what it is shown, and which adapter shows it."""
    snapshot = Snapshot(
        journey_id=journey_id,
        definition=taken.definition,
        step=taken.step,
        customer=taken.customer,
        channel=taken.channel,
        turn=turn_seq,
        context=taken.context,
        agent_config=taken.agent_config,
    )
    return Started(snapshot=snapshot, kind=taken.agent_kind, gates=_gates(taken.definition_id, taken.agent_id))


@_phase
def _begin(journey_id: int, epoch: int, turn_seq: int, token: str) -> Started | str:
    journey = lock_journey(journey_id)
    why_not = _current(journey, epoch, turn_seq, "before it started")
    if why_not:
        return why_not
    assert journey is not None
    if journey.status != Journey.Status.RUNNING or journey.waiting_on in (
        Journey.WaitingOn.CUSTOMER,
        Journey.WaitingOn.APPROVAL,
    ):
        return "not-agents-turn"
    if journey.controller_user_id:
        return "person-in-control"
    refusal = agents_may_run(journey, hold=False)
    if refusal:
        return refusal
    now = timezone.now()
    if journey.lease_until and journey.lease_until > now and journey.lease_token != token:
        return "held"
    if journey.turn_starts >= _conf("QUARANTINE_AFTER_STARTS"):
        journey_hand_to_person(
            journey,
            reason=f"Agent turn quarantined after {journey.turn_starts} starts that never finished "
            "(the step keeps killing its worker).",
            exception_kind=ExceptionKind.QUARANTINED,
            data={"turn": turn_seq, "step": journey.current_step},
        )
        events.record(
            journey,
            Event.Kind.TURN_QUARANTINED,
            "The step was quarantined; it will not be retried.",
            data={"turn": turn_seq, "starts": journey.turn_starts},
        )
        return "quarantined"
    if journey.turn_seq >= _conf("MAX_TURNS"):
        journey_hand_to_person(
            journey,
            reason=f"The agent took {journey.turn_seq} turns without finishing.",
            exception_kind=ExceptionKind.RUNAWAY,
        )
        return "runaway"
    journey.turn_starts += 1
    lifecycle.begin_turn(journey, token=token, until=now + timedelta(seconds=_conf("STEP_LEASE_SECONDS")))
    if journey.proposals.ready_to_execute().exists():
        return Started(snapshot=None, kind="", gates=_gates(journey.definition_id, journey.agent_id))
    if journey.agent is None:
        journey_hand_to_person(
            journey, reason="No agent is assigned to this journey.", exception_kind=ExceptionKind.NO_AGENT
        )
        return "no-agent"
    taken = lifecycle.TurnTaken(
        definition=journey.definition.key,
        step=journey.current_step,
        customer=journey.customer_ref,
        channel=journey.channel,
        context=journey.context,
        agent_kind=journey.agent.kind,
        agent_config=journey.agent.config,
        ready_to_execute=False,
        definition_id=journey.definition_id,
        agent_id=journey.agent_id,
    )
    return _started(journey.pk, journey.turn_seq, taken)


def agents_may_run(
    journey: Journey, *, hold: bool = True, read: tuple[set[str], list[tuple]] | None = None
) -> str | None:
    """The runtime's gate: a reason the agent must not run now, or None. Caller holds the lock.

    With ``hold`` (the default) it first holds the stop button's gates (``journeys.pause_gate``)
    in shared mode until the caller's transaction ends, so a pause either waited for this turn to
    land or is seen here. Without it (the start of a turn, which lands nothing the agent did) it
    only reads the pauses: a pause confirmed later is still seen when the result comes back.

    One query reads every active pause (there are a handful at most); the action types paused
    are kept on the instance for ``lifecycle.proposal.propose`` in the same transaction. ``read``
    is (the gates already held, the pauses read after them) from the round trip that locked the
    journey: used when those gates include the journey's, else the gates are taken and the
    pauses read again.
    """
    if journey.agent is not None and not journey.agent.is_enabled:
        return "agent-disabled"
    gates = pause_gate.gates_for_turn(definition_id=journey.definition_id, agent_id=journey.agent_id) if hold else []
    if read is not None and (not hold or connection.vendor != "postgresql" or set(gates) <= read[0]):
        pauses = read[1]
    else:
        pauses = pause_gate.hold_shared_and_read(gates, *_active_pauses_sql())
    paused_types = {action_type for _, _, action_type in pauses if action_type is not None}
    if hold:
        journey.paused_action_types = paused_types
    for definition_id, agent_id, action_type in pauses:
        everything = definition_id is None and agent_id is None and action_type is None
        if (
            everything
            or definition_id == journey.definition_id
            or (agent_id is not None and agent_id == journey.agent_id)
        ):
            return "paused"
    if (
        paused_types
        and journey.proposals.filter(
            status=ProposedAction.Status.AUTO_APPROVED, action_type_id__in=paused_types
        ).exists()
    ):
        # Allowed by the policy but not carried out yet (a transient error): with its type
        # paused, the agent must not carry it out now.
        return "paused"
    return None


@functools.cache
def _active_pauses_sql() -> tuple[str, list]:
    """``AgentPause.objects.active().values_list("definition_id", "agent_id", "action_type_id")``
    as plain SQL, built once."""
    sql, params = (
        AgentPause.objects.active().values_list("definition_id", "agent_id", "action_type_id").query.sql_with_params()
    )
    return sql, list(params)


def _locked_current(
    journey_id: int, epoch: int, turn_seq: int, token: str, *, gates: tuple[str, ...] = (), turn: Turn | None = None
) -> tuple[Journey | None, str | None]:
    """Lock the journey for the locked phase of a turn and check the turn is still current. In
    the same round trip (``lock_journey_then``): hold ``gates`` (the stop button's, as the turn
    began), read the active pauses, and make the reads registered for the turn (the rules
    token, the webhook subscriptions, the action types it proposes); ``agents_may_run`` uses the
    pauses read there when the gates still are the journey's."""
    gate_sql, gate_params = pause_gate.shared_statement(gates)
    then = [(gate_sql, gate_params)] if gate_sql else []
    then.append(_active_pauses_sql())
    pauses_at = len(then) - 1
    keeps = []
    for statements, keep in opening_reads(journey_id, turn):
        then += statements
        keeps.append((len(then) - 1, keep))
    journey, rows = lock_journey_then(journey_id, then)
    group = events.current_together()  # a locked phase runs in its block (``_phase``)
    assert group is not None
    for at, keep in keeps:
        keep(journey_id, rows[at], group.stash)
    why_not = _current(journey, epoch, turn_seq, "when its result came back")
    if why_not:
        return journey, why_not
    assert journey is not None
    if journey.lease_token != token:
        return journey, "superseded"
    held = set(gates) if gate_sql else set()
    refusal = agents_may_run(journey, read=(held, rows[pauses_at]))
    if refusal:
        # Paused (or disabled) while the agent was thinking: its result must not land. Free the
        # lease and leave the turn number alone, so the same turn runs again on resume.
        journey.turn_starts = max(0, journey.turn_starts - 1)
        lifecycle.release_turn(journey)
        why, again = {"paused": ("the agents were paused", "they are resumed")}.get(
            refusal, ("the agent was disabled", "it is enabled again")
        )
        events.record(
            journey,
            Event.Kind.TURN_DROPPED,
            f"An agent turn was dropped when its result came back: {why}. It runs again when {again}.",
            data={"turn": turn_seq, "phase": "when its result came back", "reason": refusal},
        )
        return journey, refusal
    return journey, None


def _close_turn(journey: Journey) -> None:
    """The current turn is over: later deliveries of its task become no-ops. Caller saves."""
    journey.turn_seq += 1
    journey.turn_starts = 0


def _finish_turn(journey: Journey) -> None:
    """Close the turn and let the agent go on (the lifecycle enqueues its next turn)."""
    _close_turn(journey)
    lifecycle.end_turn(journey)


@_phase
def _execute_ready(journey_id: int, epoch: int, turn_seq: int, token: str, gates: tuple[str, ...] = ()) -> str:
    journey, why_not = _locked_current(journey_id, epoch, turn_seq, token, gates=gates)
    if why_not:
        return why_not
    assert journey is not None
    for proposal in journey.proposals.ready_to_execute().select_related("action_type", "journey"):
        proposal.journey = journey
        if proposal_execute(proposal, context_carried=True) == "retry":
            return _schedule_retry(journey, f"{proposal.action_type.name} hit a transient core-system error.")
    journey.step_attempts = 0
    _finish_turn(journey)
    return "executed"


@_phase
def _fail_transient(
    journey_id: int, epoch: int, turn_seq: int, token: str, error: str, error_class: str, gates: tuple[str, ...] = ()
) -> str:
    journey, why_not = _locked_current(journey_id, epoch, turn_seq, token, gates=gates)
    if why_not:
        return why_not
    assert journey is not None
    return _schedule_retry(journey, error, error_class)


def _schedule_retry(journey: Journey, error: str, error_class: str = "CoreBankUnavailable") -> str:
    """Back off, or fall back to a person when the attempts are spent. Caller holds the lock."""
    journey.step_attempts += 1
    if journey.step_attempts >= _conf("MAX_STEP_ATTEMPTS"):
        events.record(
            journey,
            Event.Kind.TURN_FAILED,
            f"Step “{journey.current_step_title}” failed {journey.step_attempts} times: {error}",
            data={"error": error, "attempts": journey.step_attempts},
        )
        _close_turn(journey)
        journey_hand_to_person(
            journey,
            reason=f"Retries spent: {error}",
            exception_kind=ExceptionKind.STEP_FAILED,
            data={"error": error, "error_class": error_class},
        )
        return "fallback"
    delay = _conf("RETRY_BASE_SECONDS") * (2 ** (journey.step_attempts - 1))
    _close_turn(journey)
    lifecycle.retry(journey, delay_seconds=delay, error=error)
    return "retry"


@_phase
def _fail_permanent(
    journey_id: int, epoch: int, turn_seq: int, token: str, error: str, error_class: str, gates: tuple[str, ...] = ()
) -> str:
    journey, why_not = _locked_current(journey_id, epoch, turn_seq, token, gates=gates)
    if why_not:
        return why_not
    assert journey is not None
    events.record(journey, Event.Kind.TURN_FAILED, f"The agent failed: {error}", data={"error": error})
    _close_turn(journey)
    journey_hand_to_person(
        journey,
        reason=f"The agent failed: {error}",
        exception_kind=ExceptionKind.AGENT_ERROR,
        data={"error": error, "error_class": error_class},
    )
    return "fallback"


@_phase
def _apply(journey_id: int, epoch: int, turn_seq: int, token: str, turn: Turn, gates: tuple[str, ...] = ()) -> str:
    journey, why_not = _locked_current(journey_id, epoch, turn_seq, token, gates=gates, turn=turn)
    if why_not:
        return why_not
    assert journey is not None
    agent = journey.agent
    ctx = journey.context
    ctx.setdefault("facts", {}).update(turn.facts)
    ctx.pop("reply", None)
    # No save here: every way out of this phase is a lifecycle transition, whose one UPDATE
    # carries the context with the status change (``lifecycle.journey.CARRIED``).
    if turn.note:
        events.record(
            journey,
            Event.Kind.AGENT_NOTE,
            turn.note,
            actor_kind=Event.Actor.AGENT,
            actor_agent=agent,
            data={"confidence": turn.confidence} if turn.confidence is not None else None,
        )

    outcomes: list[str] = []
    for index, spec in enumerate(turn.proposals):
        try:
            proposal = proposal_create(
                journey,
                action=spec.action,
                params=spec.params,
                explanation=spec.explanation,
                key=f"j{journey.pk}-t{turn_seq}-{index}",
                agent=agent,
                confidence=spec.confidence,
            )
        except ActionParamsError as exc:
            _close_turn(journey)
            journey_hand_to_person(
                journey,
                reason=f"The agent proposed an invalid action: {exc}",
                exception_kind=ExceptionKind.INVALID_PROPOSAL,
            )
            return "fallback"
        if proposal.status == ProposedAction.Status.DENIED:
            _close_turn(journey)
            journey_hand_to_person(
                journey,
                reason=f"Policy denied {proposal.action_type.name}: {proposal.decision_explanation}",
                exception_kind=ExceptionKind.POLICY_DENIED,
                data={"proposal": proposal.pk, "rule": proposal.decision_rule},
            )
            return "denied"
        if proposal.status == ProposedAction.Status.AUTO_APPROVED:
            outcome = proposal_execute(proposal, context_carried=True)
            if outcome == "retry":
                return _schedule_retry(journey, f"{proposal.action_type.name} hit a transient core-system error.")
            outcomes.append(outcome)
        else:
            outcomes.append("pending")

    journey.step_attempts = 0
    if "pending" in outcomes:
        _close_turn(journey)
        lifecycle.wait_for_approval(journey)
        return "waiting-approval"
    if "failed" in outcomes:
        _finish_turn(journey)  # the agent sees the failure in its results and decides
        return "action-failed"
    return _follow(journey, turn)


def _follow(journey: Journey, turn: Turn) -> str:
    """Apply what the agent said happens next. Caller holds the lock."""
    agent = journey.agent
    if turn.spawn:
        try:
            child = journey_start(
                definition=turn.spawn["definition"],
                customer_ref=journey.customer_ref,
                channel=journey.channel,
                message=turn.spawn.get("message", ""),
                request=turn.spawn.get("data", {}),
                agent=agent,
                parent=journey,
            )
            journey.context.setdefault("facts", {}).setdefault("linked", []).append(child.pk)
        except JourneyError as exc:
            events.record(
                journey,
                Event.Kind.EXCEPTION,
                f"Could not open the linked journey: {exc}",
                data={"kind": ExceptionKind.LINK_FAILED, "error_class": type(exc).__name__},
            )
    if turn.then == "goto":
        if journey.version.step(turn.goto) is None:
            _close_turn(journey)
            journey_hand_to_person(
                journey,
                reason=f"The agent asked for an unknown step '{turn.goto}'.",
                exception_kind=ExceptionKind.AGENT_ERROR,
            )
            return "fallback"
        finished = {
            "kind": Event.Kind.STEP_FINISHED,
            "summary": f"Step “{journey.current_step_title}” finished.",
            "actor_kind": Event.Actor.AGENT,
            "actor_agent": agent,
            "step": journey.current_step,
        }
        journey.current_step = turn.goto
        journey.context["results"] = {}
        journey.state_changed_at = timezone.now()
        started = {
            "kind": Event.Kind.STEP_STARTED,
            "summary": f"Step “{journey.current_step_title}” started.",
            "actor_kind": Event.Actor.AGENT,
            "actor_agent": agent,
        }
        events.record_many(journey, [finished, started])
        _finish_turn(journey)
        return "advanced"
    if turn.then == "wait_customer":
        _close_turn(journey)
        lifecycle.wait_for_customer(journey, until=timezone.now() + customer_timeout())
        return "waiting-customer"
    if turn.then == "complete":
        events.record(
            journey,
            Event.Kind.STEP_FINISHED,
            f"Step “{journey.current_step_title}” finished.",
            actor_kind=Event.Actor.AGENT,
            actor_agent=agent,
        )
        _close_turn(journey)
        journey_finish(
            journey,
            Journey.Status.COMPLETED,
            turn.note or "The customer's request is done.",
            actor_kind=Event.Actor.AGENT,
        )
        return "completed"
    if turn.then == "abandon":
        _close_turn(journey)
        journey_finish(
            journey, Journey.Status.ABANDONED, turn.note or "The customer left.", data={"step": journey.current_step}
        )
        return "abandoned"
    if turn.then == "handoff":
        _close_turn(journey)
        journey_hand_to_person(
            journey,
            reason=turn.reason or "The agent asked for a person.",
            exception_kind=turn.exception_kind or ExceptionKind.AGENT_HANDOFF,
            actor_kind=Event.Actor.AGENT,
            data={"confidence": turn.confidence} if turn.confidence is not None else None,
        )
        return "handed-off"
    _finish_turn(journey)
    return "continued"


def sweep(now=None) -> dict[str, int]:
    """Re-enqueue journeys whose turn is due but not running; abandon silent customers.

    Runs from Celery beat. Re-enqueueing is safe because a task whose turn already ran is a
    no-op; a re-sent turn's ``dispatch_deadline`` (see ``lifecycle.requeue``) keeps the next
    sweeps from piling up duplicates while its message waits in a long queue.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=float(settings.HANDOFF.get("SWEEP_GRACE_SECONDS", 10)))
    backoff_max = timedelta(seconds=float(settings.HANDOFF.get("SWEEP_BACKOFF_MAX_SECONDS", 300)))
    requeued = abandoned = 0
    not_dispatched = Q(dispatch_deadline__isnull=True) | Q(dispatch_deadline__lte=now)
    due = Journey.objects.due(now - grace).filter(not_dispatched)
    # Paused journeys are not requeued (their turn would only be refused); resume enqueues them.
    stopped = AgentPause.objects.stopped_journeys_q()
    due = due.none() if stopped is None else due.exclude(stopped)
    due_ids = list(due.values_list("pk", flat=True)[:500])
    for journey_id in due_ids:
        with transaction.atomic():
            journey = lock_journey(journey_id)
            if journey is None or not Journey.objects.due(now - grace).filter(not_dispatched, pk=journey_id).exists():
                continue
            lifecycle.requeue(journey, now=now, grace=grace, backoff_max=backoff_max)
            requeued += 1
    for journey_id in Journey.objects.customer_overdue(now).values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            journey = lock_journey(journey_id)
            if journey is None or journey.waiting_on != Journey.WaitingOn.CUSTOMER or journey.next_run_at > now:
                continue
            journey.turn_seq += 1
            journey_finish(
                journey,
                Journey.Status.ABANDONED,
                "The customer did not reply in time; the journey is abandoned.",
                data={"step": journey.current_step, "reason": "customer_timeout"},
            )
            abandoned += 1
    return {"requeued": requeued, "abandoned": abandoned}
