"""The proposal's lifecycle: the only code that changes a proposed action's status.

Every transition assumes the caller holds the row lock of the proposal's journey and writes a
conditional ``UPDATE … WHERE pk = … AND status IN (sources)``: of two racing callers exactly one
wins; the loser gets ``IllegalTransition`` (or ``False`` from ``execute``, where losing means the
effect already happened). The event that records the change is written in the same transaction.

| transition | from                       | to                                  |
| ---------- | -------------------------- | ----------------------------------- |
| propose    | (new)                      | auto_approved, pending or denied    |
| approve    | pending                    | approved (its last approval)        |
| approve_partly | pending                | pending (one more approval counted) |
| edit       | pending                    | pending, new parameters             |
| reject     | pending                    | rejected                            |
| withdraw   | pending                    | withdrawn                           |
| escalate   | pending                    | pending, a new approval window      |
| expire     | pending                    | expired                             |
| claim      | pending (unclaimed, lapsed or own claim) | pending, claimed by the reviewer |
| release_claim | pending (the holder's claim) | pending, unclaimed                |

A claim and a release are events on the journey's timeline ("Claimed for review", "Review claim
released", by the person), so they reach the audit trail like any decision; a claim that lapsed
is named by the next claim that replaces it.
| execute    | approved, auto_approved    | executed                            |
| fail       | approved, auto_approved    | failed                              |

Every transition but ``claim`` clears a reviewer's claim: a decision (or an edit, an escalation,
one of two approvals) ends the reading it was claimed for.

The policy seam (``journeys.policy``) is a pure judgement (``decide``) plus explicit side
effects (``apply``): ``propose`` and ``approve`` apply them — counting against cumulative limits,
opening the approval request, sampling — after their own status change, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from .. import events, policy
from ..actions import validate_params
from ..bounds import bounds_decision, bounds_record_refusal
from ..db import OpeningRead, insert_rows, instances, register_opening_read, select_all_sql, update_if
from ..errors import IllegalTransition
from ..models import ActionType, Agent, Event, Journey, ProposedAction
from ..rights import Right

Status = ProposedAction.Status


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        Transition("auto_approve", "auto-approve it", (Status.PROPOSED,), Status.AUTO_APPROVED),
        Transition("hold", "hold it for approval", (Status.PROPOSED,), Status.PENDING),
        Transition("deny", "deny it", (Status.PROPOSED,), Status.DENIED),
        Transition("approve", "approve it", (Status.PENDING,), Status.APPROVED),
        Transition("approve_partly", "approve it", (Status.PENDING,), Status.PENDING),
        Transition("edit", "edit it", (Status.PENDING,), Status.PENDING),
        Transition("reject", "reject it", (Status.PENDING,), Status.REJECTED),
        Transition("withdraw", "withdraw it", (Status.PENDING,), Status.WITHDRAWN),
        Transition("escalate", "escalate it", (Status.PENDING,), Status.PENDING),
        Transition("expire", "let it expire", (Status.PENDING,), Status.EXPIRED),
        Transition("claim", "claim it for review", (Status.PENDING,), Status.PENDING),
        Transition("release_claim", "release your claim", (Status.PENDING,), Status.PENDING),
        Transition("execute", "execute it", (Status.APPROVED, Status.AUTO_APPROVED), Status.EXECUTED),
        Transition("fail", "record its failure", (Status.APPROVED, Status.AUTO_APPROVED), Status.FAILED),
    ]
}

# What a person may do with a proposal, and the transition each button takes.
PERSON_TRANSITIONS = ("approve", "edit", "reject", "withdraw")


def _label(proposal: ProposedAction) -> str:
    return f"{proposal.action_type.name} on J-{proposal.journey_id}"


def _move(proposal: ProposedAction, name: str, **changes: Any) -> bool:
    """Conditional UPDATE from the transition's sources; returns whether this caller won."""
    transition = TRANSITIONS[name]
    values = {"claimed_by": None, "claimed_until": None, **changes, "status": transition.target}
    updated = update_if(ProposedAction, proposal.pk, values, field="status", among=transition.sources)
    if updated:
        for field, value in values.items():
            setattr(proposal, field, value)
    return bool(updated)


def _must_move(proposal: ProposedAction, name: str, **changes: Any) -> None:
    if not _move(proposal, name, **changes):
        current = ProposedAction.objects.filter(pk=proposal.pk).values_list("status", flat=True).first()
        shown = Status(current).label.lower() if current else "gone"
        raise IllegalTransition(f"{_label(proposal)} is {shown}; cannot {TRANSITIONS[name].label}.")


# --- proposing --------------------------------------------------------------------------------


def propose(
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
    """Record a proposal and the policy's decision on it. Caller holds the journey lock.

    Raises ``ActionParamsError`` (nothing written) when the parameters do not fit the schema.
    The "action proposed" event keeps what was proposed; later edits are events of their own.
    """
    clean = validate_params(action, params)
    group = events.current_together()
    action_type = group.stash.get(_TURN_ACTION_TYPES, {}).get(action) if group is not None else None
    proposal = ProposedAction(
        journey=journey,
        action_type=action_type or ActionType.objects.get(key=action),
        params=clean,
        explanation=explanation,
        confidence=confidence,
        proposed_by_agent=agent,
        proposed_by_user=user,
        step=journey.current_step,
        epoch=journey.epoch,
        idempotency_key=key,
    )
    # Parameters naming another customer's resources are refused (and recorded) before the
    # policy judges (``journeys.bounds``); an agent's proposal of a paused action type waits
    # for a person whatever the rules allow. The judgement reads only, so it is made before the
    # proposal is written, and the proposal is written once, already decided: one of the three
    # transitions out of "proposed", taken by the INSERT itself.
    refused = bounds_decision(journey, proposal)
    decision = refused[0] if refused else _held_by_pause(proposal, policy.decide(proposal))
    name = {ProposedAction.Effect.ALLOW: "auto_approve", ProposedAction.Effect.DENY: "deny"}.get(
        decision.effect, "hold"
    )
    assert Status.PROPOSED in TRANSITIONS[name].sources
    proposal.status = TRANSITIONS[name].target
    proposal.decision_effect = decision.effect
    proposal.decision_rule = decision.rule[:200]
    proposal.decision_explanation = decision.explanation
    proposal.required_approvals = decision.required_approvals
    proposal.expires_at = decision.expires_at
    proposal.decided_at = timezone.now() if name != "hold" else None
    insert_rows([proposal])  # one INSERT composed once, as the ORM's ``create`` would write it
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
    if refused:
        bounds_record_refusal(journey, proposal, refused[1])
    policy.apply(proposal, decision, outcome=proposal.status)
    events.record(
        journey,
        Event.Kind.ACTION_DECIDED,
        decision.explanation,
        proposal=proposal,
        data={"effect": decision.effect, "rule": decision.rule, "status": proposal.status},
    )
    return proposal


# The action types an agent's turn proposes, read in the round trip that locks its journey
# (``journeys.db.OpeningRead``) and kept in its phase's stash under this name.
_TURN_ACTION_TYPES = "journeys.action_types"


def _turn_action_types_statement(journey_id: int, turn: Any) -> list[tuple[str, list]] | None:
    if turn is None or not turn.proposals:
        return None
    keys = sorted({spec.action for spec in turn.proposals})
    return [(f"{select_all_sql(ActionType)} WHERE t.key = ANY(%s)", [keys])]


def _keep_turn_action_types(journey_id: int, rows: list[tuple], stash: dict[str, Any]) -> None:
    stash[_TURN_ACTION_TYPES] = {action_type.key: action_type for action_type in instances(ActionType, rows)}


register_opening_read(OpeningRead(_turn_action_types_statement, _keep_turn_action_types))


def _held_by_pause(proposal: ProposedAction, decision: policy.Decision) -> policy.Decision:
    """An agent's proposal of a paused action type waits for a person, whatever the rules allow.

    The agent's turn holds the stop button's gates (``journeys.pause_gate``), so this reads
    every pause confirmed before it.
    """
    from ..models import AgentPause

    if proposal.proposed_by_agent_id is None or decision.effect != ProposedAction.Effect.ALLOW:
        return decision
    # The turn read the active pauses after taking its gates (``runtime.agents_may_run``) in this
    # same transaction: a type not among them is not paused, and reading again would tell nothing new.
    known = getattr(proposal.journey, "paused_action_types", None)
    if known is not None and proposal.action_type_id not in known:
        return decision
    pause = (
        AgentPause.objects.active()
        .filter(action_type_id=proposal.action_type_id)
        .select_related("paused_by", "action_type")
        .first()
    )
    if pause is None:
        return decision
    minutes = int(settings.HANDOFF.get("DEFAULT_APPROVAL_TIMEOUT_MINUTES", 60))
    return policy.Decision(
        effect=ProposedAction.Effect.REQUIRE_APPROVAL,
        rule=f"stop button: {proposal.action_type.name} paused",
        explanation=(
            f"{proposal.action_type.name} needs a person: agents' {proposal.action_type.name} proposals are "
            f"paused since {timezone.localtime(pause.paused_at):%H:%M} by {pause.paused_by.get_username()} "
            f"({pause.reason}). The rules alone would allow it: {decision.explanation}"
        ),
        required_approvals=1,
        expires_at=timezone.now() + timedelta(minutes=minutes),
    )


# --- deciding -------------------------------------------------------------------------------


def approve_partly(proposal: ProposedAction, *, required: int, by: Any, summary: str, data: dict[str, Any]) -> None:
    """One approval of several is counted (the ``Approval`` row is the caller's record)."""
    _must_move(proposal, "approve_partly", required_approvals=required)
    _person_event(proposal, Event.Kind.ACTION_APPROVED, by, summary, data)


def approve(
    proposal: ProposedAction,
    *,
    by: Any,
    reason: str,
    required: int,
    decision: policy.Decision,
    summary: str,
    data: dict[str, Any],
) -> None:
    """The last approval: pending → approved; the policy's side effects of an approval (the
    proposal counts against its cumulative limits) are applied in the same transaction."""
    _must_move(
        proposal,
        "approve",
        decided_by=by,
        decided_at=timezone.now(),
        decision_reason=reason,
        required_approvals=required,
    )
    policy.apply(proposal, decision, outcome=Status.APPROVED)
    _person_event(proposal, Event.Kind.ACTION_APPROVED, by, summary, data)


def edit(
    proposal: ProposedAction,
    *,
    params: dict[str, Any],
    decision: policy.Decision,
    by: Any,
    reason: str,
    changed: list[str],
    narrowing: bool,
) -> None:
    """New parameters and the policy's decision on them; the proposal stays pending.

    An edit is its own event (``action_edited``: before, after, changed, reason, narrowing); the
    "action proposed" event keeps what was proposed. An edit that does more than narrow makes
    the editor the maker of the new version, whose approval then does not count.
    """
    before = dict(proposal.params)
    changes: dict[str, Any] = {
        "params": params,
        "decision_effect": decision.effect,
        "decision_rule": decision.rule[:200],
        "decision_explanation": decision.explanation,
        "required_approvals": max(1, decision.required_approvals),
    }
    if not narrowing:
        changes["maker_user"] = by
    _must_move(proposal, "edit", **changes)
    what = ", ".join(f"{name} {before.get(name, '—')} → {params.get(name, '—')}" for name in changed)
    then = (
        "it only narrows the action" if narrowing else f"{by.get_username()} is now its maker; another person decides"
    )
    _person_event(
        proposal,
        Event.Kind.ACTION_EDITED,
        by,
        f"{by.get_username()} edited {proposal.action_type.name} ({what}): {reason}; {then}.",
        {"before": before, "after": dict(params), "changed": list(changed), "reason": reason, "narrowing": narrowing},
    )


def reject(proposal: ProposedAction, *, by: Any, reason: str, summary: str, data: dict[str, Any]) -> None:
    _must_move(proposal, "reject", decided_by=by, decided_at=timezone.now(), decision_reason=reason)
    _person_event(proposal, Event.Kind.ACTION_REJECTED, by, summary, data)


def withdraw(proposal: ProposedAction, *, reason: str, by: Any = None, record: bool = True) -> None:
    """Withdraw a pending proposal: by the person in control, or (``by=None``) because the
    journey finished (then no event of its own: the finish is the record)."""
    _must_move(
        proposal,
        "withdraw",
        decided_by=by,
        decided_at=timezone.now(),
        decision_reason=reason or "Withdrawn by the person in control.",
    )
    if record and by is not None:
        _person_event(
            proposal,
            Event.Kind.ACTION_REJECTED,
            by,
            f"{by.get_username()} withdrew {proposal.action_type.name}" + (f": {reason}" if reason else "."),
            {"outcome": "withdrawn", "reason": reason},
        )


def escalate(proposal: ProposedAction, *, expires_at: datetime, summary: str, data: dict[str, Any]) -> None:
    """Nobody decided in time; a new approval window opens for the escalation team."""
    _must_move(proposal, "escalate", expires_at=expires_at)
    events.record(proposal.journey, Event.Kind.ACTION_EXPIRED, summary, proposal=proposal, data=data)


def expire(proposal: ProposedAction, *, now: datetime, reason: str, summary: str) -> bool:
    """Pending → expired (never recorded as a person's rejection). False: decided meanwhile."""
    if not _move(proposal, "expire", decided_at=now, decision_reason=reason):
        return False
    events.record(proposal.journey, Event.Kind.ACTION_EXPIRED, summary, proposal=proposal, data={"outcome": "fallback"})
    return True


# --- claiming for review ---------------------------------------------------------------------


def claim(proposal: ProposedAction, *, by: Any, until: datetime, now: datetime) -> Any:
    """Claim a pending proposal for ``by`` until ``until``; claiming one's own claim again
    extends it. Returns None when it won, else the person whose live claim stands (the UPDATE
    is conditional, so of two people claiming at once exactly one wins)."""
    free = models.Q(claimed_by__isnull=True) | models.Q(claimed_until__lte=now) | models.Q(claimed_by=by)
    # The claim as the caller read it under the journey lock: whose lapsed claim this replaces.
    lapsed = proposal.claimed_by if proposal.claimed_by_id not in (None, by.pk) else None
    renewed = proposal.claimed_by_id == by.pk and proposal.claimed_until is not None and proposal.claimed_until > now
    updated = ProposedAction.objects.filter(free, pk=proposal.pk, status=Status.PENDING).update(
        claimed_by=by, claimed_until=until
    )
    if updated:
        proposal.claimed_by, proposal.claimed_until = by, until
        minutes = max(1, round((until - now).total_seconds() / 60))
        verb = "renewed the claim on" if renewed else "claimed"
        summary = f"{by.get_username()} {verb} {proposal.action_type.name} for review ({minutes} min)"
        data: dict[str, Any] = {"minutes": minutes, "renewed": renewed}
        if lapsed is not None:
            summary += f"; {lapsed.get_username()}'s claim had lapsed"
            data["lapsed_claim_of"] = lapsed.get_username()
        _person_event(proposal, Event.Kind.ACTION_CLAIMED, by, summary + ".", data)
        return None
    current = ProposedAction.objects.select_related("claimed_by").filter(pk=proposal.pk).first()
    if current is None or current.status != Status.PENDING:
        shown = current.get_status_display().lower() if current else "gone"
        raise IllegalTransition(f"{_label(proposal)} is {shown}; cannot {TRANSITIONS['claim'].label}.")
    return current.claimed_by


def release_claim(proposal: ProposedAction, *, by: Any) -> bool:
    """Drop ``by``'s claim; False when they held none (it lapsed, or someone decided)."""
    released = ProposedAction.objects.filter(pk=proposal.pk, status=Status.PENDING, claimed_by=by).update(
        claimed_by=None, claimed_until=None
    )
    if not released:
        return False
    proposal.claimed_by, proposal.claimed_until = None, None
    _person_event(
        proposal,
        Event.Kind.CLAIM_RELEASED,
        by,
        f"{by.get_username()} released {proposal.action_type.name} back to the approval queue.",
        {},
    )
    return True


# --- executing --------------------------------------------------------------------------------


def execute(proposal: ProposedAction, *, result: dict[str, Any], summary: str) -> bool:
    """The effect happened: approved → executed. False: an earlier delivery already recorded it
    (the idempotency key made the effect happen once)."""
    if not _move(proposal, "execute", result=result, executed_at=timezone.now()):
        return False
    events.record(proposal.journey, Event.Kind.ACTION_EXECUTED, summary, proposal=proposal, data={"result": result})
    return True


def fail(proposal: ProposedAction, *, error: str) -> bool:
    if not _move(proposal, "fail", error=error, executed_at=timezone.now()):
        return False
    events.record(
        proposal.journey,
        Event.Kind.ACTION_FAILED,
        f"{proposal.action_type.name} failed: {error}",
        proposal=proposal,
        data={"transient": False, "error": error},
    )
    return True


def _person_event(proposal: ProposedAction, kind: str, by: Any, summary: str, data: dict[str, Any]) -> None:
    events.record(
        proposal.journey, kind, summary, actor_kind=Event.Actor.PERSON, actor_user=by, proposal=proposal, data=data
    )


# --- what a person may do now -----------------------------------------------------------------

# Who may decide a proposal: the review app registers its rule (standing grant or escalation,
# with a limit) at start-up, so this module does not import it. Returns the limit or None.
_decision_limit: Callable[[Any, ProposedAction], Decimal | None] | None = None


def register_decision_rights(rule: Callable[[Any, ProposedAction], Decimal | None]) -> None:
    global _decision_limit
    _decision_limit = rule


def _proposer_user_id(proposal: ProposedAction) -> int | None:
    if proposal.proposed_by_user_id:
        return proposal.proposed_by_user_id
    if proposal.proposed_by_agent_id:
        return proposal.proposed_by_agent.user_id
    return None


def transitions_for(user: Any, proposal: ProposedAction) -> set[str]:
    """The buttons ``user`` gets for ``proposal`` now: ``approve``, ``edit``, ``reject`` (may
    decide it; the proposer never approves), ``withdraw`` (the person in control). The decision
    services re-check the same rules — and the limits, which depend on the amount — on submit."""
    from ..access import user_may

    if not user.is_authenticated or not user.is_active or proposal.status != Status.PENDING:
        return set()
    allowed: set[str] = set()
    if _decision_limit is not None:
        may_decide = _decision_limit(user, proposal) is not None
    else:
        may_decide = user_may(user, Right.APPROVE, proposal.journey.definition)
    if may_decide:
        allowed.add("reject")
        # Four-eyes: neither the proposer nor the maker of an edited version approves it.
        if user.pk not in (_proposer_user_id(proposal), proposal.maker_user_id):
            allowed |= {"approve", "edit"}
    if proposal.journey.controller_user_id == user.pk:
        allowed.add("withdraw")
    return allowed
