"""People in control: take over a journey from its agent, act on it, hand it back; the stop button.

Takeover fences the agent: ``epoch`` moves under the journey's row lock, so a turn already
running in a worker drops its result when it comes back (the runtime records TURN_DROPPED) and
any queued turn is refused. Everything a person does while in control goes through
``proposal_create`` — the same parameter validation, policy engine and events as the agent's
proposals — and is executed by the same executor, once.

Who may do what (checked here, not only in the views):

- take over: ``take_over`` on the journey's definition;
- act while in control (message, propose, withdraw): the person in control, who still holds
  ``take_over``;
- hand back: the person in control; *force* a hand-back of someone else's journey: a superuser,
  or a person holding both ``take_over`` and ``pause_agents`` on the definition (recorded);
- pause / resume agents on a definition: ``pause_agents`` on it; everything, an agent or an
  action type (these cut across definitions): a superuser, or a member of a team with the
  organisation-wide ``pause_agents`` grant.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import events, pause_gate
from .access import user_may
from .lifecycle import journey as journey_lifecycle
from .lifecycle import proposal as proposal_lifecycle
from .lifecycle.journey import enqueue_turn, may_force_hand_back
from .models import (
    ActionType,
    Agent,
    AgentPause,
    Journey,
    JourneyDefinition,
    OrganisationGrant,
    ProposedAction,
    holds_organisation_right,
)
from .models.control import pause_gate_key
from .rights import Right
from .services import (
    IllegalTransition,
    JourneyError,
    lock_journey,
    proposal_create,
    proposal_execute,
    proposal_settled,
)


class ControlError(JourneyError):
    """A control request the journey's state does not allow; the message is for people."""


class NotAllowed(ControlError):
    """The person lacks the right for this control action."""


class AlreadyControlled(ControlError):
    """Someone else controls the journey; ``holder`` is their username."""

    def __init__(self, message: str, *, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


# --- takeover and hand-back ----------------------------------------------------------------


def _locked_live(journey_id: int) -> Journey:
    journey = lock_journey(journey_id)
    if journey is None:
        raise ControlError("No such journey.")
    if not journey.is_live:
        raise ControlError(f"J-{journey.pk} is {journey.get_status_display().lower()}; nobody can take it over.")
    return journey


def _require_control(journey: Journey, user: Any) -> None:
    if journey.controller_user_id != user.pk:
        holder = journey.controller_user.get_username() if journey.controller_user_id else None
        raise NotAllowed(
            f"{holder} is in control of J-{journey.pk}."
            if holder
            else f"Take over J-{journey.pk} first: only the person in control can act on it."
        )
    if not user_may(user, Right.TAKE_OVER, journey.definition):
        raise NotAllowed(f"You may no longer act on {journey.definition.name} journeys.")


@transaction.atomic
def journey_take_over(*, journey_id: int, user: Any, note: str = "") -> Journey:
    """Make ``user`` the controller of the journey and stop its agent.

    The row lock serialises concurrent takeovers: the first wins, every later one gets
    ``AlreadyControlled`` naming the winner. Pending agent proposals stay pending, for the
    person to decide (through the approval queue) or withdraw.
    """
    journey = _locked_live(journey_id)
    if not user_may(user, Right.TAKE_OVER, journey.definition):
        raise NotAllowed(f"You may not take over {journey.definition.name} journeys.")
    if journey.controller_user_id:
        holder = journey.controller_user.get_username()
        if journey.controller_user_id == user.pk:
            raise AlreadyControlled(f"You already have J-{journey.pk}.", holder=holder)
        raise AlreadyControlled(
            f"{holder} took over J-{journey.pk} first (at {journey.state_changed_at:%H:%M:%S}).",
            holder=holder,
        )
    journey_lifecycle.take_over(journey, user=user, note=note)
    return journey


@transaction.atomic
def journey_hand_back(
    *, journey_id: int, user: Any, note: str = "", force: bool = False, then: str = "continue"
) -> Journey:
    """Return control to the agent, which resumes from the journey's current state.

    ``note`` reaches the agent's context as guidance. ``then="wait_for_customer"`` makes the agent
    wait for the customer's reply before it goes on (see the lifecycle's ``hand_back``). With
    ``force`` a person allowed to force it (see the module docstring) hands back someone else's
    journey; the event says so.
    """
    journey = _locked_live(journey_id)
    holder = journey.controller_user
    if holder is None:
        raise ControlError(f"Nobody is in control of J-{journey.pk}; there is nothing to hand back.")
    forced = holder.pk != user.pk
    if forced:
        if not force:
            raise NotAllowed(f"{holder.get_username()} is in control of J-{journey.pk}; only they can hand it back.")
        if not may_force_hand_back(user, journey.definition):
            raise NotAllowed(f"You may not force a hand-back of {journey.definition.name} journeys.")
    if then not in journey_lifecycle.HAND_BACK_THEN:
        raise ControlError("Choose whether the agent continues now or waits for the customer's reply.")
    journey_lifecycle.hand_back(journey, user=user, note=note, forced=forced, then=then)
    return journey


def journey_force_hand_back(*, journey_id: int, user: Any, note: str = "") -> Journey:
    """Hand someone else's journey back to the agent (superuser, or take over + pause agents).

    The ``hand_back`` event records that it was forced and from whom.
    """
    return journey_hand_back(journey_id=journey_id, user=user, note=note, force=True)


# --- the desk's work queue --------------------------------------------------------------------
#
# A journey the agent routed to its definition's fallback queue (its *desk*) is with a person
# but nobody controls it. Desk members claim items from it — the next one, or a selection —
# assign them to a team member, and release them back. Each goes through the journey lifecycle
# (``claim`` / ``release``) under the journey's row lock, so two people claiming at once have
# one winner; each is recorded as a takeover or a hand-over to the desk, and so audited.


def desk_order(queryset):
    """Most urgent first: least time left to the SLA, then longest on the desk."""
    return queryset.order_by("sla_deadline", "state_changed_at", "pk")


def desk_journeys(user: Any):
    """Journeys on the desks ``user`` works: with a person, on a definition they may take over."""
    from .access import journeys_for

    return journeys_for(user, Right.TAKE_OVER).filter(status=Journey.Status.HUMAN)


def _claimable(journey_id: int, user: Any, assignee: Any) -> Journey:
    journey = _locked_live(journey_id)
    if not user_may(user, Right.TAKE_OVER, journey.definition):
        raise NotAllowed(f"You may not take over {journey.definition.name} journeys.")
    if journey.status != Journey.Status.HUMAN:
        raise ControlError(f"J-{journey.pk} is not on a desk: {journey.controller_label} has it.")
    if journey.controller_user_id:
        holder = journey.controller_user.get_username()
        if journey.controller_user_id == assignee.pk:
            raise AlreadyControlled(f"{holder} already has J-{journey.pk}.", holder=holder)
        raise AlreadyControlled(
            f"{holder} claimed J-{journey.pk} first (at {journey.state_changed_at:%H:%M:%S}).", holder=holder
        )
    return journey


@transaction.atomic
def journey_claim(*, journey_id: int, user: Any) -> Journey:
    """Claim one desk item. Concurrent claims serialise on the row lock: the first wins, every
    later one gets ``AlreadyControlled`` naming the winner."""
    journey = _claimable(journey_id, user, user)
    journey_lifecycle.claim(journey, user=user)
    return journey


@transaction.atomic
def journey_claim_next(*, user: Any, definition: JourneyDefinition | None = None) -> Journey | None:
    """Claim the most urgent unclaimed item on the user's desks (or on one definition's desk).

    ``SKIP LOCKED`` lets concurrent callers pass over the row another is claiming, so two people
    pressing "Claim next" at once get two different journeys, never the same one and never an
    error. Returns None when the desk is empty.
    """
    candidates = desk_journeys(user).filter(controller_user__isnull=True)
    if definition is not None:
        candidates = candidates.filter(definition=definition)
    picked = (
        desk_order(candidates).select_for_update(of=("self",), skip_locked=True).values_list("pk", flat=True).first()
    )
    if picked is None:
        return None
    journey = _claimable(picked, user, user)  # already locked by us: re-reads the locked row
    journey_lifecycle.claim(journey, user=user)
    return journey


def journey_claim_selected(*, journey_ids: list[int], user: Any) -> tuple[list[Journey], list[str]]:
    """Claim each selected item in its own transaction; returns (claimed, why the others were not)."""
    claimed: list[Journey] = []
    refused: list[str] = []
    for journey_id in journey_ids:
        try:
            claimed.append(journey_claim(journey_id=journey_id, user=user))
        except ControlError as exc:
            refused.append(str(exc))
    return claimed, refused


def assignable_members(user: Any, definition: JourneyDefinition):
    """Team members ``user`` may hand a desk item to: active people sharing one of ``user``'s
    teams who may take over ``definition`` themselves (service users of agents excluded)."""
    from django.contrib.auth import get_user_model

    from .access import definitions_for

    members = (
        get_user_model()
        .objects.filter(is_active=True, groups__in=user.groups.all(), agent__isnull=True)
        .distinct()
        .order_by("username")
    )
    return [m for m in members if definitions_for(m, Right.TAKE_OVER).filter(pk=definition.pk).exists()]


@transaction.atomic
def journey_assign(*, journey_id: int, user: Any, assignee: Any) -> Journey:
    """Give a desk item to a team member (see ``assignable_members``); the assigner is the actor
    on record. An item already claimed is refused like a second claim."""
    journey = _claimable(journey_id, user, assignee)
    if assignee.pk != user.pk and assignee.pk not in {m.pk for m in assignable_members(user, journey.definition)}:
        raise NotAllowed(f"{assignee.get_username()} is not on your team for {journey.definition.name} journeys.")
    journey_lifecycle.claim(journey, user=assignee, by=user)
    return journey


@transaction.atomic
def journey_release(*, journey_id: int, user: Any, note: str = "") -> Journey:
    """Put a journey back on its desk: by the person who has it, or by someone allowed to force
    a hand-back (see the module docstring)."""
    journey = _locked_live(journey_id)
    holder = journey.controller_user
    if holder is None:
        raise ControlError(f"Nobody has J-{journey.pk}; there is nothing to release.")
    if holder.pk != user.pk and not may_force_hand_back(user, journey.definition):
        raise NotAllowed(f"{holder.get_username()} has J-{journey.pk}; only they can release it.")
    journey_lifecycle.release(journey, user=user, note=note)
    return journey


# --- acting while in control -----------------------------------------------------------------


@transaction.atomic
def person_propose(
    *,
    journey_id: int,
    user: Any,
    action: str,
    params: dict[str, Any],
    explanation: str,
    key: str = "",
) -> ProposedAction:
    """Propose an action as the person in control; execute it at once if the policy allows it.

    Same path as the agent's proposals: parameter validation (``ActionParamsError``, nothing
    written), the policy engine, events. ``key`` makes a resubmitted form a no-op: the same key
    returns the proposal already made.
    """
    journey = _locked_live(journey_id)
    _require_control(journey, user)
    key = f"j{journey.pk}-u{user.pk}-{key or uuid.uuid4().hex}"[:80]
    existing = ProposedAction.objects.filter(idempotency_key=key, journey=journey).first()
    if existing is not None:
        return existing
    proposal = proposal_create(journey, action=action, params=params, explanation=explanation, key=key, user=user)
    if proposal.status == ProposedAction.Status.AUTO_APPROVED:
        proposal_execute(proposal)
    return proposal


def person_send_message(*, journey_id: int, user: Any, text: str, key: str = "") -> ProposedAction:
    """Message the customer as the person in control (a ``send_message`` proposal)."""
    customer_ref = Journey.objects.filter(pk=journey_id).values_list("customer_ref", flat=True).first()
    if customer_ref is None:
        raise ControlError("No such journey.")
    return person_propose(
        journey_id=journey_id,
        user=user,
        action="send_message",
        params={"customer": customer_ref, "text": text},
        explanation="Message from the person in control.",
        key=key,
    )


@transaction.atomic
def person_execute_approved(*, journey_id: int, user: Any) -> list[ProposedAction]:
    """Execute the journey's approved proposals now, as the person in control.

    Without this they would wait for the agent's next turn (after the hand-back). Each is
    executed once through its idempotency key; a transient core-system error leaves it approved.
    """
    journey = _locked_live(journey_id)
    _require_control(journey, user)
    done = []
    for proposal in journey.proposals.ready_to_execute().select_related("action_type"):
        proposal.journey = journey
        proposal_execute(proposal)
        done.append(proposal)
    if not done:
        raise ControlError("No approved proposal is waiting to be executed.")
    return done


@transaction.atomic
def proposal_withdraw(*, proposal_id: int, user: Any, reason: str = "") -> ProposedAction:
    """Withdraw a pending proposal (the agent's or one's own) as the person in control."""
    proposal = ProposedAction.objects.select_related("action_type").filter(pk=proposal_id).first()
    if proposal is None:
        raise ControlError("No such proposal.")
    journey = _locked_live(proposal.journey_id)
    _require_control(journey, user)
    proposal.journey = journey
    try:
        proposal_lifecycle.withdraw(proposal, by=user, reason=reason)
    except IllegalTransition:
        proposal.refresh_from_db(fields=["status"])
        raise ControlError(f"{proposal.action_type.name} is already {proposal.get_status_display().lower()}.") from None
    proposal_settled(proposal, outcome="withdrawn", reason=reason)
    return proposal


# --- the stop button -------------------------------------------------------------------------


def may_pause(user: Any, definition: JourneyDefinition | None) -> bool:
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    if definition is not None:
        return user_may(user, Right.PAUSE, definition)
    # The global stop button needs an explicit organisation-wide grant: holding the right on
    # every definition that exists today would widen whenever a definition is deleted.
    return holds_organisation_right(user, OrganisationGrant.Right.PAUSE)


def _scope(
    definition: JourneyDefinition | None, agent: Agent | None = None, action_type: ActionType | None = None
) -> str:
    if definition is not None:
        return f"agents on {definition.name}"
    if agent is not None:
        return f"agent {agent.name}"
    if action_type is not None:
        return f"agents' {action_type.name} proposals"
    return "all agents"


def _check_pause_rights(user: Any, definition, agent, action_type, verb: str) -> None:
    if sum(x is not None for x in (definition, agent, action_type)) > 1:
        raise ControlError("Pause one thing at a time: a definition, an agent or an action type.")
    # An agent or an action type works across definitions: pausing it needs the organisation-wide grant.
    if not may_pause(user, definition):
        raise NotAllowed(f"You may not {verb} {_scope(definition, agent, action_type)}.")


def _active_of_scope(definition, agent, action_type):
    return AgentPause.objects.active().filter(definition=definition, agent=agent, action_type=action_type)


@transaction.atomic
def agents_pause(
    *,
    user: Any,
    definition: JourneyDefinition | None = None,
    agent: Agent | None = None,
    action_type: ActionType | None = None,
    reason: str,
) -> AgentPause:
    """Pause agents at one grain: a definition, an agent, an action type (agents' proposals of
    that type wait for a person), or — with none given — everything.

    Fences like a takeover: the pause closes its gate (``journeys.pause_gate``) before it is
    written, so it waits for every agent turn already past its pause check to land, and every
    later turn sees it. Once this returns, nothing an agent started lands; a turn in flight is
    discarded when its result comes back. Audited through ``governance_changed`` (who and why).
    """
    _check_pause_rights(user, definition, agent, action_type, "pause")
    scope = _scope(definition, agent, action_type)
    if not reason.strip():
        raise ControlError("Say why you are pausing the agents.")
    pause_gate.hold_exclusive(
        pause_gate_key(
            definition_id=definition.pk if definition else None,
            agent_id=agent.pk if agent else None,
            action_type=action_type.pk if action_type else None,
        )
    )
    try:
        with transaction.atomic():
            pause = AgentPause.objects.create(
                definition=definition, agent=agent, action_type=action_type, paused_by=user, reason=reason.strip()
            )
    except IntegrityError:
        current = _active_of_scope(definition, agent, action_type).select_related("paused_by").first()
        who = f" by {current.paused_by.get_username()} at {current.paused_at:%H:%M:%S}" if current else ""
        raise ControlError(f"{scope[0].upper()}{scope[1:]} are already paused{who}.") from None
    events.governance_changed.send(
        sender=AgentPause,
        kind="pause",
        actor=user,
        subject=scope,
        before={"paused": False},
        after={"paused": True, "pause": pause.pk},
        reason=pause.reason,
        data={"pause": pause.pk, **_scope_data(definition, agent, action_type)},
    )
    if action_type is None:  # an action-type pause stops proposals, not the journeys' turns
        from .models import Event

        _record_on_live_journeys(
            Event.Kind.PAUSED,
            user=user,
            definition=definition,
            agent=agent,
            summary=f"{user.get_username()} paused {scope}: {pause.reason}",
            data={"pause": pause.pk, "reason": pause.reason},
        )
    return pause


def _scope_data(definition, agent, action_type) -> dict[str, Any]:
    return {
        "definition": definition.key if definition else None,
        "agent": agent.name if agent else None,
        "action_type": action_type.key if action_type else None,
    }


@transaction.atomic
def agents_resume(
    *,
    user: Any,
    definition: JourneyDefinition | None = None,
    agent: Agent | None = None,
    action_type: ActionType | None = None,
    reason: str = "",
) -> AgentPause:
    """Lift the active pause of this scope and enqueue the turns that came due while paused.

    Journeys still covered by another pause (e.g. the global one) stay paused; the sweeper
    picks up any that this call does not enqueue.
    """
    _check_pause_rights(user, definition, agent, action_type, "resume")
    scope = _scope(definition, agent, action_type)
    pause = _active_of_scope(definition, agent, action_type).first()
    now = timezone.now()
    # Conditional UPDATE: of two people resuming at once, exactly one does it.
    if pause is None or not AgentPause.objects.filter(pk=pause.pk, resumed_at__isnull=True).update(
        resumed_at=now, resumed_by=user, resume_reason=reason.strip()
    ):
        raise ControlError(f"{scope[0].upper()}{scope[1:]} are not paused.")
    events.governance_changed.send(
        sender=AgentPause,
        kind="resume",
        actor=user,
        subject=scope,
        before={"paused": True, "pause": pause.pk},
        after={"paused": False},
        reason=reason.strip(),
        data={
            "pause": pause.pk,
            **_scope_data(definition, agent, action_type),
            "paused_for_seconds": round((now - pause.paused_at).total_seconds()),
        },
    )
    if action_type is None:
        from .models import Event

        _record_on_live_journeys(
            Event.Kind.RESUMED,
            user=user,
            definition=definition,
            agent=agent,
            summary=f"{user.get_username()} resumed {scope}" + (f": {reason.strip()}" if reason.strip() else "."),
            data={"pause": pause.pk, "reason": reason.strip()},
        )
    _enqueue_resumed(definition, agent)
    pause.refresh_from_db()
    return pause


RESUME_ENQUEUE_LIMIT = 2000


def _enqueue_resumed(definition: JourneyDefinition | None, agent: Agent | None = None) -> int:
    stopped = AgentPause.objects.stopped_journeys_q()
    if stopped is None:
        return 0
    due = Journey.objects.due().exclude(stopped)
    if definition is not None:
        due = due.filter(definition=definition)
    if agent is not None:
        due = due.filter(agent=agent)
    rows = list(due.order_by("next_run_at").values_list("pk", "epoch", "turn_seq")[:RESUME_ENQUEUE_LIMIT])
    for pk, epoch, turn_seq in rows:
        # A stale (epoch, turn) is a no-op in the runtime, so no lock is needed to enqueue.
        enqueue_turn(Journey(pk=pk, epoch=epoch, turn_seq=turn_seq))
    return len(rows)


def mark_agents_paused(journeys: list[Journey]) -> list[Journey]:
    """Set ``agents_paused`` on each journey (its definition's, its agent's or the global pause
    stops its agent), with one query for all of them; pages show such a running journey as
    paused, not running."""
    stopped = AgentPause.objects.stopped_journeys_q()
    if stopped is None:
        paused_ids = {j.pk for j in journeys}
    else:
        paused_ids = set(Journey.objects.filter(stopped, pk__in=[j.pk for j in journeys]).values_list("pk", flat=True))
    for journey in journeys:
        journey.agents_paused = journey.pk in paused_ids and journey.is_live
    return journeys


def _record_on_live_journeys(kind: str, *, user: Any, definition, agent, summary: str, data: dict[str, Any]) -> int:
    """One timeline event per live journey a pause or resume touched, written in one bulk
    insert (a pause can cover thousands of journeys). These events are the journeys' view of a
    governance record: the audit trail keeps the pause itself (``governance_changed``).

    Written after the pause commits: inserting events takes a key-share lock on each journey
    row, which must not wait on an agent turn that holds its journey and waits for the pause
    gate this transaction holds (a deadlock)."""
    transaction.on_commit(
        lambda: _write_live_journey_events(
            kind, user=user, definition=definition, agent=agent, summary=summary, data=data
        )
    )
    return 0


def _write_live_journey_events(kind: str, *, user: Any, definition, agent, summary: str, data: dict[str, Any]) -> int:
    from .models import Event

    live = Journey.objects.live()
    if definition is not None:
        live = live.filter(definition=definition)
    if agent is not None:
        live = live.filter(agent=agent)
    now = timezone.now()
    rows = [
        Event(
            journey_id=pk,
            kind=kind,
            at=now,
            actor_kind=Event.Actor.PERSON,
            actor_user=user,
            step=step,
            epoch=epoch,
            summary=summary,
            data=data,
        )
        for pk, step, epoch in live.values_list("pk", "current_step", "epoch").iterator(chunk_size=2000)
    ]
    Event.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def active_pause_for(journey: Journey) -> AgentPause | None:
    """The pause that stops this journey's agent now (its definition's, its agent's, or all)."""
    return (
        AgentPause.objects.covering(journey.definition_id, journey.agent_id)
        .select_related("paused_by", "definition", "agent")
        .first()
    )


def action_type_pauses() -> list[AgentPause]:
    """Active action-type pauses: agents' proposals of these types wait for a person."""
    return list(
        AgentPause.objects.active().filter(action_type__isnull=False).select_related("action_type", "paused_by")
    )
