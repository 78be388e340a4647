"""The journey's lifecycle: the only code that changes a journey's status-like fields.

Status-like fields are ``status``, ``waiting_on``, ``controller_user``, ``epoch``, the lease
(``lease_token``, ``lease_until``) and ``next_run_at``. Each named transition below

- assumes the caller holds the journey's row lock (``journeys.services.lock_journey``) and
  passes that locked instance;
- checks the instance is in one of the transition's source states, then writes a conditional
  ``UPDATE … WHERE pk = … AND status IN (sources)`` and checks the row count, so a caller
  that skipped the lock still cannot move a journey from a state the table does not allow
  (``IllegalTransition``);
- records its events (which the audit trail listens to) in the same transaction;
- carries the runtime's bookkeeping fields (context, current step, turn counters) from the
  instance into the same UPDATE, so a caller never needs a second ``save()``.

``Journey.save()`` refuses to write an instance whose status-like fields were changed outside
these transitions, and the database holds the invariants SQL can say (see the model's
constraints): a person controls a journey only while its status is ``human``; ``waiting_on``
agrees with the status.

| transition         | from                          | to                                    |
| ------------------ | ----------------------------- | ------------------------------------- |
| begin_turn         | running                       | running, lease taken                  |
| release_turn       | running                       | running, lease freed                  |
| end_turn           | running, waiting_approval     | same, lease freed, next turn enqueued |
| retry              | running                       | running · retry (timer in next_run_at)|
| wait_for_customer  | running                       | running · customer                    |
| wait_for_approval  | running                       | waiting_approval · approval           |
| wake               | running · customer, waiting_approval | running (next turn enqueued)   |
| requeue            | running                       | running (sweeper re-enqueues)         |
| to_person          | running, waiting_approval, human | human (fallback queue)             |
| take_over          | running, waiting_approval, human | human, controlled, epoch + 1       |
| claim              | human (on the desk)           | human, controlled by the claimer or assignee |
| release            | human (controlled)            | human, back on the desk               |
| hand_back          | human (controlled)            | running (now, or · customer), or waiting_approval, epoch + 1 |
| complete / abandon / fail | running, waiting_approval, human | completed / abandoned / failed |
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .. import events
from ..db import update_if
from ..errors import IllegalTransition
from ..models import Event, Journey, ProposedAction
from ..rights import Right

Status = Journey.Status
WaitingOn = Journey.WaitingOn
LIVE = (Status.RUNNING, Status.WAITING_APPROVAL, Status.HUMAN)

# Plain fields the runtime changes on the locked instance; a transition writes them with its
# status change, in the same UPDATE.
CARRIED = ("context", "current_step", "turn_seq", "turn_starts", "step_attempts", "state_changed_at")


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        Transition("begin_turn", "start an agent turn", (Status.RUNNING,), Status.RUNNING),
        Transition("release_turn", "release the agent's turn", (Status.RUNNING,), Status.RUNNING),
        Transition("end_turn", "end the agent's turn", (Status.RUNNING, Status.WAITING_APPROVAL), Status.RUNNING),
        Transition("retry", "schedule a retry", (Status.RUNNING,), Status.RUNNING),
        Transition("wait_for_customer", "wait for the customer", (Status.RUNNING,), Status.RUNNING),
        Transition("wait_for_approval", "wait for approval", (Status.RUNNING,), Status.WAITING_APPROVAL),
        Transition("wake", "wake the agent", (Status.RUNNING, Status.WAITING_APPROVAL), Status.RUNNING),
        Transition("requeue", "re-enqueue the agent's turn", (Status.RUNNING,), Status.RUNNING),
        Transition("to_person", "hand it to a person", LIVE, Status.HUMAN),
        Transition("take_over", "take it over", LIVE, Status.HUMAN),
        Transition("claim", "claim it from the desk", (Status.HUMAN,), Status.HUMAN),
        Transition("release", "release it to the desk", (Status.HUMAN,), Status.HUMAN),
        Transition("hand_back", "hand it back", (Status.HUMAN,), Status.RUNNING),
        Transition("complete", "complete it", LIVE, Status.COMPLETED),
        Transition("abandon", "abandon it", LIVE, Status.ABANDONED),
        Transition("fail", "fail it", LIVE, Status.FAILED),
    ]
}

FINISH = {Status.COMPLETED: "complete", Status.ABANDONED: "abandon", Status.FAILED: "fail"}
FINISH_EVENT = {
    Status.COMPLETED: Event.Kind.COMPLETED,
    Status.ABANDONED: Event.Kind.ABANDONED,
    Status.FAILED: Event.Kind.FAILED,
}


def _move(journey: Journey, name: str, **changes: Any) -> None:
    """The one writer of status-like fields: a conditional UPDATE from the transition's sources."""
    transition = TRANSITIONS[name]
    if journey.status not in transition.sources:
        raise IllegalTransition(f"J-{journey.pk} is {journey.get_status_display().lower()}; cannot {transition.label}.")
    values: dict[str, Any] = {field: getattr(journey, field) for field in CARRIED}
    values.update(changes)
    if "next_run_at" in changes and "dispatch_deadline" not in changes:
        values["dispatch_deadline"] = None  # a new due time: the sweeper's back-off starts over
    shown = tuple(values.get(field, journey.__dict__.get(field)) for field in Journey.SHOWN_FIELDS)
    if shown != getattr(journey, "_shown_seen", None):
        values["updated_at"] = timezone.now()  # the board's change marker: only what it shows
    updated = update_if(Journey, journey.pk, values, field="status", among=transition.sources)
    if updated != 1:
        raise IllegalTransition(f"J-{journey.pk} changed meanwhile; cannot {transition.label}.")
    for field, value in values.items():
        setattr(journey, field, value)
    journey.mark_lifecycle_clean()


def enqueue_turn(journey: Journey, *, countdown: float | None = None) -> None:
    """Schedule the journey's next agent turn once the current transaction commits."""
    from ..tasks import send_turn  # the task module imports the runtime, which imports this

    args = (journey.pk, journey.epoch, journey.turn_seq)
    transaction.on_commit(lambda: send_turn(args, countdown=countdown))


# --- the agent's turn -------------------------------------------------------------------------


def begin_turn(journey: Journey, *, token: str, until: datetime) -> None:
    """Take the turn's lease (a retry back-off that came due ends here)."""
    if journey.waiting_on not in (WaitingOn.NOTHING, WaitingOn.RETRY):
        raise IllegalTransition(f"J-{journey.pk} waits on {journey.get_waiting_on_display().lower()}.")
    _move(journey, "begin_turn", lease_token=token, lease_until=until, waiting_on=WaitingOn.NOTHING)


@dataclass(frozen=True)
class TurnTaken:
    """What the agent's turn starts from: returned by ``begin_turn_at_once``, or read off the
    locked journey by the runtime's locked start."""

    definition: str
    step: str
    customer: str
    channel: str
    context: dict[str, Any]
    agent_kind: str
    agent_config: dict[str, Any]
    ready_to_execute: bool
    definition_id: int | None = None
    agent_id: int | None = None


@functools.cache
def _begin_turn_sql() -> str:
    from ..models import Agent, AgentPause, JourneyDefinition

    journey, agent = Journey._meta.db_table, Agent._meta.db_table
    definition, pause = JourneyDefinition._meta.db_table, AgentPause._meta.db_table
    proposal = ProposedAction._meta.db_table
    ready = ", ".join(f"'{status}'" for status in (ProposedAction.Status.AUTO_APPROVED, ProposedAction.Status.APPROVED))
    return f"""
        UPDATE {journey} AS j
           SET turn_starts = j.turn_starts + 1, lease_token = %(token)s, lease_until = %(until)s
         WHERE j.id = %(id)s AND j.epoch = %(epoch)s AND j.turn_seq = %(turn)s
           AND j.status = '{Status.RUNNING}' AND j.waiting_on = '{WaitingOn.NOTHING}'
           AND j.controller_user_id IS NULL
           AND (j.lease_until IS NULL OR j.lease_until <= %(now)s OR j.lease_token = %(token)s)
           AND j.turn_starts < %(max_starts)s AND j.turn_seq < %(max_turns)s
           AND EXISTS (SELECT 1 FROM {agent} a WHERE a.id = j.agent_id AND a.is_enabled)
           AND NOT EXISTS (SELECT 1 FROM {pause} p WHERE p.resumed_at IS NULL)
        RETURNING (SELECT d.key FROM {definition} d WHERE d.id = j.definition_id),
                  j.current_step, j.customer_ref, j.channel, j.context,
                  (SELECT a.kind FROM {agent} a WHERE a.id = j.agent_id),
                  (SELECT a.config FROM {agent} a WHERE a.id = j.agent_id),
                  EXISTS (SELECT 1 FROM {proposal} pa WHERE pa.journey_id = j.id AND pa.status IN ({ready})),
                  j.definition_id, j.agent_id
    """


def begin_turn_at_once(
    journey_id: int,
    *,
    epoch: int,
    turn_seq: int,
    token: str,
    now: datetime,
    until: datetime,
    max_starts: int,
    max_turns: int,
) -> TurnTaken | None:
    """The common start of a turn in one statement, outside any transaction: when the task is
    current (epoch and turn), the journey is the agent's to run with nothing to wait on, no
    person in control, no other live lease, the start and turn counts under their limits, the
    agent enabled and no pause active at all, count the start and take the lease — the same
    writes as ``begin_turn`` after the runtime's checks — and return what the agent needs.

    None when any of that does not hold: the caller then takes the row lock and finds out why
    (``begin_turn`` and the runtime's checks), which records what each case records. The
    conditional UPDATE re-checks its conditions on the row it locks, so it cannot race a
    takeover, a pause confirmed before it or another worker's lease. Nothing shown on the board
    changes, so the change marker stays. PostgreSQL only; elsewhere always None.
    """
    if connection.vendor != "postgresql":
        return None  # SQLite's RETURNING cannot reach the other tables; the locked path serves it
    with connection.cursor() as cursor:
        cursor.execute(
            _begin_turn_sql(),
            {
                "id": journey_id,
                "epoch": epoch,
                "turn": turn_seq,
                "token": token,
                "now": now,
                "until": until,
                "max_starts": max_starts,
                "max_turns": max_turns,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    definition, step, customer, channel, context, kind, config, ready, definition_id, agent_id = row
    as_json = Journey._meta.get_field("context").from_db_value
    return TurnTaken(
        definition=definition,
        step=step,
        customer=customer,
        channel=channel,
        context=as_json(context, None, connection),
        agent_kind=kind,
        agent_config=as_json(config, None, connection) or {},
        ready_to_execute=ready,
        definition_id=definition_id,
        agent_id=agent_id,
    )


def release_turn(journey: Journey) -> None:
    """Free the lease without finishing the turn (the same turn runs again later)."""
    _move(journey, "release_turn", lease_token="", lease_until=None)


def end_turn(journey: Journey, *, run_next: bool = True) -> None:
    """The turn is over: free the lease; when the agent may go on, enqueue its next turn."""
    changes: dict[str, Any] = {"lease_token": "", "lease_until": None}
    go_on = run_next and journey.status == Status.RUNNING and journey.waiting_on == WaitingOn.NOTHING
    if go_on:
        changes["next_run_at"] = timezone.now()
    _move(journey, "end_turn", **changes)
    if go_on:
        enqueue_turn(journey)


def retry(journey: Journey, *, delay_seconds: float, error: str) -> None:
    """Back off: the timer lives in ``next_run_at``; the countdown only saves the sweeper a lap."""
    _move(
        journey,
        "retry",
        waiting_on=WaitingOn.RETRY,
        lease_token="",
        lease_until=None,
        next_run_at=timezone.now() + timedelta(seconds=delay_seconds),
    )
    events.record(
        journey,
        Event.Kind.TURN_RETRY,
        f"Attempt {journey.step_attempts} failed ({error}); retrying in {delay_seconds:.0f} s.",
        data={"error": error, "attempt": journey.step_attempts, "delay_seconds": delay_seconds},
    )
    enqueue_turn(journey, countdown=delay_seconds)


def wait_for_customer(journey: Journey, *, until: datetime) -> None:
    _move(
        journey,
        "wait_for_customer",
        waiting_on=WaitingOn.CUSTOMER,
        next_run_at=until,
        lease_token="",
        lease_until=None,
        state_changed_at=timezone.now(),
    )


def wait_for_approval(journey: Journey) -> None:
    _move(
        journey,
        "wait_for_approval",
        status=Status.WAITING_APPROVAL,
        waiting_on=WaitingOn.APPROVAL,
        next_run_at=None,
        lease_token="",
        lease_until=None,
        state_changed_at=timezone.now(),
    )


def wake(journey: Journey) -> bool:
    """Let the agent go on: after the customer replied, or once no proposal waits for a decision.

    Returns whether the journey woke (a journey still waiting on another proposal does not).
    """
    if journey.status == Status.WAITING_APPROVAL:
        if journey.proposals.filter(status=ProposedAction.Status.PENDING).exists():
            return False
    elif not (journey.status == Status.RUNNING and journey.waiting_on == WaitingOn.CUSTOMER):
        return False
    now = timezone.now()
    _move(journey, "wake", status=Status.RUNNING, waiting_on=WaitingOn.NOTHING, next_run_at=now, state_changed_at=now)
    enqueue_turn(journey)
    return True


def requeue(journey: Journey, *, now: datetime, grace: timedelta, backoff_max: timedelta) -> None:
    """The sweeper found the turn due but not running: enqueue it again.

    The due time stays; the re-sent message gets a dispatch deadline as long as the turn has
    already waited (at least the grace, at most ``backoff_max``). Until it passes the message is
    presumed queued behind a backlog, so a turn that keeps waiting is re-sent after 1, 2, 4, 8 …
    graces instead of on every sweep; a message that was really lost is re-sent after the first.
    """
    waited = now - journey.next_run_at if journey.next_run_at else grace
    _move(journey, "requeue", dispatch_deadline=now + max(grace, min(waited, backoff_max)))
    enqueue_turn(journey)


# --- people ---------------------------------------------------------------------------------


def to_person(
    journey: Journey,
    *,
    reason: str,
    exception_kind: str,
    actor_kind: str = Event.Actor.SYSTEM,
    data: dict[str, Any] | None = None,
) -> None:
    """Route the journey to its fallback queue: a person must act. A person already in control
    stays in control."""
    _move(
        journey,
        "to_person",
        status=Status.HUMAN,
        waiting_on=WaitingOn.NOTHING,
        needs_person_reason=reason[:200],
        state_changed_at=timezone.now(),
        next_run_at=None,
        lease_token="",
        lease_until=None,
    )
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


def take_over(journey: Journey, *, user: Any, note: str = "") -> None:
    """Make ``user`` the controller and fence the agent: the epoch moves, so every task scheduled
    at the old epoch drops its result. Permission checks are the caller's (``journeys.control``)."""
    previous = {"status": journey.status, "waiting_on": journey.waiting_on, "in_control": journey.controller_label}
    journey.turn_starts = 0
    _move(
        journey,
        "take_over",
        epoch=journey.epoch + 1,
        controller_user=user,
        status=Status.HUMAN,
        waiting_on=WaitingOn.NOTHING,
        next_run_at=None,
        lease_token="",
        lease_until=None,
        state_changed_at=timezone.now(),
    )
    events.record(
        journey,
        Event.Kind.TAKEOVER,
        f"{user.get_username()} took over from {previous['in_control']}." + (f" Note: {note}" if note else ""),
        actor_kind=Event.Actor.PERSON,
        actor_user=user,
        data={
            "previous": previous,
            "epoch": journey.epoch,
            "note": note,
            "pending_proposals": list(journey.proposals.pending().values_list("pk", flat=True)),
        },
    )


def claim(journey: Journey, *, user: Any, by: Any = None) -> None:
    """Give a journey waiting on its desk (with a person, nobody in control) to ``user``: claimed
    by ``user`` themselves, or assigned to them by ``by``. The agent is already fenced (it routed
    the journey to the desk); the epoch still moves, as on any takeover, so nothing scheduled
    before lands. Recorded (and so audited) as a takeover. Permission checks are the caller's."""
    if journey.controller_user_id is not None:
        raise IllegalTransition(f"{journey.controller_user.get_username()} already has J-{journey.pk}.")
    by = by or user
    desk = journey.controller_label
    _move(
        journey,
        "claim",
        epoch=journey.epoch + 1,
        controller_user=user,
        waiting_on=WaitingOn.NOTHING,
        next_run_at=None,
        lease_token="",
        lease_until=None,
        state_changed_at=timezone.now(),
    )
    assigned = by.pk != user.pk
    summary = (
        f"{by.get_username()} assigned J-{journey.pk} from {desk} to {user.get_username()}."
        if assigned
        else f"{user.get_username()} claimed J-{journey.pk} from {desk}."
    )
    events.record(
        journey,
        Event.Kind.TAKEOVER,
        summary,
        actor_kind=Event.Actor.PERSON,
        actor_user=by,
        data={
            "previous": {"status": Status.HUMAN, "waiting_on": "", "in_control": desk},
            "epoch": journey.epoch,
            "desk": desk,
            "claimed_by": user.get_username(),
            "assigned_by": by.get_username() if assigned else "",
            "pending_proposals": list(journey.proposals.pending().values_list("pk", flat=True)),
        },
    )


def release(journey: Journey, *, user: Any, note: str = "") -> None:
    """Put a journey a person controls back on its desk (with a person, nobody in control), for
    anyone on the desk to claim. Recorded as a hand-over to the desk; no exception is raised."""
    holder = journey.controller_user
    if holder is None:
        raise IllegalTransition(f"Nobody has J-{journey.pk}; there is nothing to release.")
    _move(
        journey,
        "release",
        controller_user=None,
        waiting_on=WaitingOn.NOTHING,
        state_changed_at=timezone.now(),
    )
    desk = journey.controller_label
    who = user.get_username()
    summary = (
        f"{who} released J-{journey.pk} to {desk}."
        if holder.pk == user.pk
        else f"{who} released J-{journey.pk} from {holder.get_username()} to {desk}."
    )
    events.record(
        journey,
        Event.Kind.HANDED_TO_PERSON,
        summary + (f" Note: {note}" if note else ""),
        actor_kind=Event.Actor.PERSON,
        actor_user=user,
        data={"reason": note or "released to the desk", "released": True, "from": holder.get_username(), "desk": desk},
    )


HAND_BACK_THEN = ("continue", "wait_for_customer")


def hand_back(journey: Journey, *, user: Any, note: str = "", forced: bool = False, then: str = "continue") -> None:
    """Return control to the agent at a new epoch; it resumes from the current state. A journey
    with a pending proposal goes back to waiting for the decision, which then wakes it.

    ``then="wait_for_customer"``: the person asked the customer something, so the agent waits
    for the reply (as after its own question: the customer's message wakes it, the customer
    timeout ends the wait) instead of going on at once."""
    if then not in HAND_BACK_THEN:
        raise IllegalTransition(f"Hand back J-{journey.pk} how? {then!r} is not a choice.")
    holder = journey.controller_user
    if holder is None:
        raise IllegalTransition(f"Nobody is in control of J-{journey.pk}; there is nothing to hand back.")
    if note:
        journey.context.setdefault("guidance", []).append(f"{user.get_username()}: {note}")
    journey.step_attempts = 0
    journey.turn_starts = 0
    now = timezone.now()
    waiting = journey.proposals.pending().exists()
    for_reply = then == "wait_for_customer" and not waiting
    if waiting:
        status, waiting_on, next_run_at = Status.WAITING_APPROVAL, WaitingOn.APPROVAL, None
    elif for_reply:
        from ..services import customer_timeout  # services import this module

        status, waiting_on, next_run_at = Status.RUNNING, WaitingOn.CUSTOMER, now + customer_timeout()
    else:
        status, waiting_on, next_run_at = Status.RUNNING, WaitingOn.NOTHING, now
    _move(
        journey,
        "hand_back",
        epoch=journey.epoch + 1,
        controller_user=None,
        needs_person_reason="",
        lease_token="",
        lease_until=None,
        state_changed_at=now,
        status=status,
        waiting_on=waiting_on,
        next_run_at=next_run_at,
    )
    summary = (
        f"{user.get_username()} forced a hand-back from {holder.get_username()} to the agent."
        if forced
        else f"{user.get_username()} handed back to the agent."
    )
    if for_reply:
        summary = summary[:-1] + ", which waits for the customer's reply first."
    events.record(
        journey,
        Event.Kind.HAND_BACK,
        summary + (f" Note: {note}" if note else ""),
        actor_kind=Event.Actor.PERSON,
        actor_user=user,
        data={
            "note": note,
            "forced": forced,
            "from": holder.get_username(),
            "epoch": journey.epoch,
            "then": "wait_for_customer" if for_reply else "continue",
        },
    )
    if not waiting and not for_reply:
        enqueue_turn(journey)


def finish(
    journey: Journey,
    status: str,
    summary: str,
    *,
    actor_kind: str = Event.Actor.SYSTEM,
    actor_user: Any = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Complete, abandon or fail the journey; its pending proposals are withdrawn."""
    from .proposal import withdraw  # the proposal lifecycle needs nothing from this module

    now = timezone.now()
    _move(
        journey,
        FINISH[status],
        status=status,
        waiting_on=WaitingOn.NOTHING,
        controller_user=None,
        finished_at=now,
        state_changed_at=now,
        next_run_at=None,
        lease_token="",
        lease_until=None,
    )
    for pending in journey.proposals.pending():
        withdraw(pending, reason="Journey finished.", record=False)
    events.record(
        journey,
        FINISH_EVENT[status],
        summary,
        actor_kind=actor_kind,
        actor_user=actor_user,
        actor_agent=journey.agent if actor_kind == Event.Actor.AGENT else None,
        data=data,
    )


# --- what a person may do now -----------------------------------------------------------------


def transitions_for(user: Any, journey: Journey) -> set[str]:
    """The person-facing transitions ``user`` may take on ``journey`` now; pages show exactly
    these buttons, and the services re-check the same rules when the button is pressed.

    Names: ``take_over``, ``hand_back`` (the person in control), ``force_hand_back``, ``act``
    (message, propose, execute approved: the person in control).
    """
    from ..access import user_may

    if not user.is_authenticated or not user.is_active or journey.status not in LIVE:
        return set()
    allowed: set[str] = set()
    may_take_over = user_may(user, Right.TAKE_OVER, journey.definition)
    if journey.controller_user_id is None:
        if may_take_over and journey.status in TRANSITIONS["take_over"].sources:
            allowed.add("take_over")
    elif journey.controller_user_id == user.pk:
        if may_take_over:
            allowed |= {"hand_back", "act"}
    elif may_force_hand_back(user, journey.definition):
        allowed.add("force_hand_back")
    return allowed


def may_force_hand_back(user: Any, definition: Any) -> bool:
    """A superuser, or a person holding both ``take_over`` and ``pause_agents`` on it."""
    from ..access import user_may

    if user.is_superuser and user.is_active:
        return True
    return user_may(user, Right.TAKE_OVER, definition) and user_may(user, Right.PAUSE, definition)


def sources(name: str) -> Iterable[str]:
    return TRANSITIONS[name].sources
