"""Deciding pending proposals: approve, reject, edit & approve, batches, expiry, samples.

Every decision locks the journey first (``lock_journey``), so decisions on one journey are
serialised with each other and with the agent's turn; the status move itself is a named
transition of ``journeys.lifecycle.proposal`` (a conditional UPDATE), so a race has exactly one
winner either way. Four-eyes is
checked here for a clear message and enforced by the database (``Approval`` constraints).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from journeys import events
from journeys.access import user_may
from journeys.actions import ActionParamsError, edit_changes, validate_params
from journeys.bounds import bounds_refuse_edit
from journeys.errors import IllegalTransition
from journeys.lifecycle import proposal as lifecycle
from journeys.models import Event, ExceptionKind, Journey, ProposedAction
from journeys.rights import Right
from journeys.services import (
    journey_hand_to_person,
    journey_wake_after_decision,
    lock_journey,
    proposal_settled,
)

from ..access import decision_limit_for, escalation_team_for
from ..models import Approval, ApprovalRequest, ReviewSample
from ..models.scopes import OnTimeout
from ..policy import Verdict, judge, proposer_user_id

log = logging.getLogger(__name__)
Status = ProposedAction.Status


class DecisionError(Exception):
    """A decision that cannot be made; the message is for the person who tried."""


@dataclass(frozen=True)
class DecisionResult:
    proposal: ProposedAction
    # "approved" | "partial" | "rejected" | "edited" (pending for another person) | "refused"
    # (nothing decided; see message)
    outcome: str
    message: str


@dataclass(frozen=True)
class BatchItem:
    proposal_id: int
    ok: bool
    message: str


def _label(proposal: ProposedAction) -> str:
    return f"{proposal.action_type.name} on J-{proposal.journey_id}"


def _already(proposal: ProposedAction) -> str:
    """Why a proposal is no longer pending, in words for the person who lost the race."""
    who = f" by {proposal.decided_by.get_username()}" if proposal.decided_by_id else ""
    when = f" at {timezone.localtime(proposal.decided_at):%H:%M:%S}" if proposal.decided_at else ""
    state = {
        Status.APPROVED: "already approved",
        Status.EXECUTED: "already approved and executed",
        Status.REJECTED: "already rejected",
        Status.EXPIRED: "no longer pending: its approval window ran out",
        Status.WITHDRAWN: "withdrawn (the journey moved on)",
        Status.FAILED: "already approved; it failed",
    }.get(proposal.status, f"no longer pending ({proposal.get_status_display().lower()})")
    if proposal.status in (Status.EXPIRED, Status.WITHDRAWN):
        who = when = ""
    return f"{_label(proposal)} was {state}{who}{when}. Nothing was changed."


def _locked_pending(proposal_id: int) -> tuple[Journey, ProposedAction]:
    """Lock the proposal's journey and return it with the proposal, which must be pending."""
    journey_id = ProposedAction.objects.filter(pk=proposal_id).values_list("journey_id", flat=True).first()
    journey = lock_journey(journey_id) if journey_id else None
    if journey is None:
        raise DecisionError("No such action.")
    proposal = ProposedAction.objects.select_related("action_type", "proposed_by_agent", "decided_by").get(
        pk=proposal_id
    )
    proposal.journey = journey
    if proposal.status != Status.PENDING:
        raise DecisionError(_already(proposal))
    return journey, proposal


def _check_claim(proposal: ProposedAction, user) -> None:
    """Someone else's live claim means they are reading it: the decision is theirs until they
    decide, release it, or the claim lapses."""
    holder = proposal.claim_holder()
    if holder is not None and holder.pk != user.pk:
        until = timezone.localtime(proposal.claimed_until)
        raise DecisionError(
            f"{holder.get_username()} is reviewing {_label(proposal)} (claimed until {until:%H:%M}). "
            "Nothing was changed."
        )


def claim_minutes() -> int:
    from django.conf import settings

    return int(settings.HANDOFF["REVIEW_CLAIM_MINUTES"])


@transaction.atomic
def proposal_claim(*, proposal_id: int, user) -> ProposedAction:
    """Claim a pending proposal for review so nobody else reads it meanwhile. Only someone who
    may decide it can claim it; the claim lapses after ``REVIEW_CLAIM_MINUTES`` and any decision
    clears it. Two people claiming at once: one wins, the other is told who."""
    _journey, proposal = _locked_pending(proposal_id)
    _check_may_decide(user, proposal)
    now = timezone.now()
    holder = lifecycle.claim(proposal, by=user, until=now + timedelta(minutes=claim_minutes()), now=now)
    if holder is not None:
        raise DecisionError(
            f"{holder.get_username()} is already reviewing {_label(proposal)}; "
            "it is theirs until they decide or release it."
        )
    return proposal


@transaction.atomic
def proposal_release_claim(*, proposal_id: int, user) -> ProposedAction:
    """Give a claimed proposal back to the queue (the holder only)."""
    _journey, proposal = _locked_pending(proposal_id)
    if not lifecycle.release_claim(proposal, by=user):
        raise DecisionError(f"You are not reviewing {_label(proposal)}; there is no claim of yours to release.")
    return proposal


def _amount(proposal: ProposedAction, params: dict[str, Any]) -> Decimal | None:
    money = proposal.action_type.money_param
    if not money or params.get(money) in (None, ""):
        return None
    try:
        return Decimal(str(params[money]))
    except InvalidOperation:
        return None


def _escalation(proposal: ProposedAction, user) -> dict[str, Any]:
    """How an escalated proposal is being decided, for the decision event: to which team it was
    escalated and whether this person decides through that delegation (no standing grant).
    Empty for a proposal that was never escalated."""
    request = (
        ApprovalRequest.objects.filter(proposal_id=proposal.pk, escalated_at__isnull=False)
        .select_related("escalate_to")
        .first()
    )
    if request is None:
        return {}
    team = request.escalate_to.name if request.escalate_to_id else ""
    delegated = not user_may(user, Right.APPROVE, proposal.journey.definition)
    return {"under_escalation": True, "escalated_to": team, "delegated": delegated}


def _escalation_text(escalation: dict[str, Any]) -> str:
    if not escalation:
        return ""
    team = escalation["escalated_to"] or "another team"
    how = " as its delegate" if escalation["delegated"] else ""
    return f" (decided under escalation to {team}{how})"


def _check_may_decide(user, proposal: ProposedAction) -> Decimal:
    """The person may decide this proposal: a standing approve grant on its definition, or the
    proposal was escalated to one of their teams. Returns their approval limit for it."""
    limit = decision_limit_for(user, proposal)
    if limit is None:
        raise DecisionError(f"You may not decide actions on {proposal.journey.definition.name}.")
    return limit


def _check_may_approve(user, proposal: ProposedAction, params: dict[str, Any]) -> Verdict:
    """Four-eyes, the approver's limit and the rule, all evaluated now (not when proposed).

    The cumulative limits are re-checked under the same counter row locks the runtime takes
    (``judge(lock=True)``), held until the decision commits: of two people approving the last
    of a budget at the same instant, the second waits, then sees the first's usage.
    """
    definition = proposal.journey.definition
    if decision_limit_for(user, proposal) is None:
        raise DecisionError(f"You may not approve actions on {definition.name}.")
    if proposer_user_id(proposal) == user.pk:
        raise DecisionError(f"You proposed {_label(proposal)}; another person must approve it (four-eyes).")
    if proposal.maker_user_id == user.pk:
        raise DecisionError(
            f"You edited {_label(proposal)} beyond narrowing it, so you are the maker of what it says now; "
            "another person must approve it (four-eyes)."
        )
    verdict = judge(proposal, params=params, lock=True)
    if verdict.decision.effect == ProposedAction.Effect.DENY:
        raise DecisionError(f"The current rules deny this: {verdict.decision.explanation}")
    amount = _amount(proposal, params)
    limit = decision_limit_for(user, proposal)
    # The boundary: an amount exactly at the limit may be approved; one cent above may not.
    if amount is not None and (limit is None or amount > limit):
        team = escalation_team_for(user, proposal)
        whose = (
            f"{team.name}'s approval limit"
            if team and not user_may(user, Right.APPROVE, definition)
            else "your approval limit"
        )
        raise DecisionError(
            f"{amount} is above {whose} of {limit or Decimal('0.00')} on {definition.name}; "
            "someone with a higher limit must decide."
        )
    return verdict


def _approval_event(
    proposal: ProposedAction,
    user,
    *,
    partial: bool,
    edited: bool,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
    escalation: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The summary and data of the approval event the lifecycle transition records."""
    name = user.get_username()
    if partial:
        summary = (
            f"{name} approved {proposal.action_type.name} (1 of {proposal.required_approvals}); "
            "a second person must approve."
        )
    elif edited:
        summary = f"{name} edited and approved {proposal.action_type.name}: {reason}"
    else:
        summary = f"{name} approved {proposal.action_type.name}" + (f": {reason}" if reason else ".")
    summary += _escalation_text(escalation)
    data = {
        "approver": name,
        "partial": partial,
        "edited": edited,
        "before": before,
        "after": after,
        **escalation,
    }
    return summary, data


def _add_approval(
    journey: Journey,
    proposal: ProposedAction,
    user,
    verdict: Verdict,
    *,
    reason: str,
    edited: bool = False,
    before: dict[str, Any] | None = None,
) -> DecisionResult:
    required = max(1, verdict.decision.required_approvals)
    before = before if before is not None else proposal.params
    escalation = _escalation(proposal, user)
    try:
        with transaction.atomic():
            Approval.objects.create(
                proposal=proposal,
                approver=user,
                proposer_user_id=proposer_user_id(proposal),
                edited=edited,
                params_before=before,
                params_after=proposal.params,
                reason=reason,
            )
    except IntegrityError:
        raise DecisionError(
            f"You have already approved {_label(proposal)}; a second, different person must approve it."
        ) from None
    approvals = proposal.approvals.filter(dropped_at__isnull=True).count()
    if approvals < required:
        proposal.required_approvals = required
        summary, data = _approval_event(
            proposal,
            user,
            partial=True,
            edited=edited,
            before=before,
            after=proposal.params,
            reason=reason,
            escalation=escalation,
        )
        try:
            lifecycle.approve_partly(proposal, required=required, by=user, summary=summary, data=data)
        except IllegalTransition:  # unreachable while the journey lock is held
            raise DecisionError(_already(ProposedAction.objects.get(pk=proposal.pk))) from None
        return DecisionResult(
            proposal,
            "partial",
            f"Your approval of {_label(proposal)} is recorded (1 of {required}); a second person must approve it.",
        )
    summary, data = _approval_event(
        proposal,
        user,
        partial=False,
        edited=edited,
        before=before,
        after=proposal.params,
        reason=reason,
        escalation=escalation,
    )
    try:
        lifecycle.approve(
            proposal,
            by=user,
            reason=reason,
            required=required,
            decision=verdict.decision,
            summary=summary,
            data=data,
        )
    except IllegalTransition:  # unreachable while the journey lock is held; a race never double-decides
        raise DecisionError(_already(ProposedAction.objects.get(pk=proposal.pk))) from None
    journey_wake_after_decision(journey)
    verb = "Edited and approved" if edited else "Approved"
    return DecisionResult(proposal, "approved", f"{verb} {_label(proposal)}.")


@transaction.atomic
def proposal_approve(*, proposal_id: int, user, reason: str = "") -> DecisionResult:
    """Approve a pending proposal (or add the first of two approvals). Raises ``DecisionError``."""
    journey, proposal = _locked_pending(proposal_id)
    _check_claim(proposal, user)
    verdict = _check_may_approve(user, proposal, proposal.params)
    return _add_approval(journey, proposal, user, verdict, reason=reason.strip())


@transaction.atomic
def proposal_reject(*, proposal_id: int, user, reason: str) -> DecisionResult:
    """Reject a pending proposal; the reason reaches the agent's context and the journey wakes."""
    reason = (reason or "").strip()
    if not reason:
        raise DecisionError("A rejection needs a reason: the agent reads it to decide what to do next.")
    _journey, proposal = _locked_pending(proposal_id)
    _check_claim(proposal, user)
    _check_may_decide(user, proposal)
    escalation = _escalation(proposal, user)
    summary = f"{user.get_username()} rejected {proposal.action_type.name}: {reason}"
    try:
        lifecycle.reject(
            proposal,
            by=user,
            reason=reason,
            summary=summary + _escalation_text(escalation),
            data={"reason": reason, **escalation},
        )
    except IllegalTransition:
        raise DecisionError(_already(ProposedAction.objects.get(pk=proposal.pk))) from None
    proposal_settled(proposal, outcome="rejected", reason=reason)
    return DecisionResult(proposal, "rejected", f"Rejected {_label(proposal)}.")


@transaction.atomic
def proposal_edit_approve(*, proposal_id: int, user, params: dict[str, Any], reason: str) -> DecisionResult:
    """Edit a pending proposal's parameters — and approve it when the edit only narrows it.

    Only parameters the action type declares editable may change; identity parameters
    (customer, account, card…) never (``DecisionError``). The edit is re-checked by the policy
    engine (a denied edit is refused); approvals given to the earlier parameters are dropped.

    - An edit that only narrows the action (a lower amount, nothing else) is approved by the
      editor at once, within their limit, as an ordinary approval.
    - Any other edit makes the editor the maker of the new version: it stays pending and
      another person must approve it (the database refuses the maker's approval).

    Either way the edit is its own ``action_edited`` event.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DecisionError("An edit needs a reason: say why the parameters changed.")
    journey, proposal = _locked_pending(proposal_id)
    _check_claim(proposal, user)
    try:
        clean = validate_params(proposal.action_type.key, params)
    except ActionParamsError as exc:
        raise DecisionError(str(exc)) from None
    before = dict(proposal.params)
    if clean == before:
        raise DecisionError("Nothing was changed; use Approve to approve the action as proposed.")
    _check_may_decide(user, proposal)
    # An edit naming another customer's resources is refused and recorded (so it commits).
    if refusal := bounds_refuse_edit(journey, proposal, clean, user=user):
        return DecisionResult(proposal, "refused", refusal)
    try:
        changed, narrowing = edit_changes(proposal.action_type.key, before, clean)
    except ActionParamsError as exc:
        raise DecisionError(str(exc)) from None
    if narrowing:
        verdict = _check_may_approve(user, proposal, clean)
    else:
        verdict = judge(proposal, params=clean, lock=True)
        if verdict.decision.effect == ProposedAction.Effect.DENY:
            raise DecisionError(f"The current rules deny this: {verdict.decision.explanation}")
    proposal.approvals.filter(dropped_at__isnull=True).update(dropped_at=timezone.now())
    try:
        lifecycle.edit(
            proposal,
            params=clean,
            decision=verdict.decision,
            by=user,
            reason=reason,
            changed=changed,
            narrowing=narrowing,
        )
    except IllegalTransition:
        raise DecisionError(_already(ProposedAction.objects.get(pk=proposal.pk))) from None
    if narrowing:
        return _add_approval(journey, proposal, user, verdict, reason=reason, edited=True, before=before)
    return DecisionResult(
        proposal,
        "edited",
        f"Edited {_label(proposal)}. You wrote this version, so another person must approve it.",
    )


def proposals_decide_batch(*, proposal_ids: list[int], user, decision: str, reason: str = "") -> list[BatchItem]:
    """Approve or reject several proposals, each on its own (its own transaction, limits and
    four-eyes checks); the result says which went through and why the others did not.
    Callers pass only ids the user may decide (``review.access.decidable_proposals_for``)."""
    if decision not in ("approve", "reject"):
        raise DecisionError("Choose approve or reject.")
    if decision == "reject" and not (reason or "").strip():
        raise DecisionError("A rejection needs a reason: the agent reads it to decide what to do next.")
    results: list[BatchItem] = []
    for pk in dict.fromkeys(proposal_ids):  # keep order, drop repeats
        try:
            if decision == "approve":
                outcome = proposal_approve(proposal_id=pk, user=user, reason=reason)
            else:
                outcome = proposal_reject(proposal_id=pk, user=user, reason=reason)
            results.append(BatchItem(pk, True, outcome.message))
        except DecisionError as exc:
            results.append(BatchItem(pk, False, str(exc)))
    return results


# --- expiry ---------------------------------------------------------------------------------


def proposals_expire(*, now: datetime | None = None) -> dict[str, int]:
    """Escalate or fall back every pending proposal whose approval window ran out (beat).

    Each proposal in its own transaction under its journey's lock; one that was decided in the
    meantime is left alone. An expiry is recorded as expired, never as a person's rejection.
    """
    now = now or timezone.now()
    counts = {"escalated": 0, "fallback": 0}
    due = list(
        ProposedAction.objects.pending()
        .filter(expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        with transaction.atomic():
            outcome = _expire_one(pk, now)
        if outcome:
            counts[outcome] += 1
    return counts


def _expire_one(proposal_id: int, now: datetime) -> str | None:
    try:
        journey, proposal = _locked_pending(proposal_id)
    except DecisionError:
        return None
    if proposal.expires_at is None or proposal.expires_at > now:
        return None
    request = ApprovalRequest.objects.filter(proposal=proposal).select_related("escalate_to").first()
    minutes = request.timeout_minutes if request else 0
    waited = f"{minutes} min" if minutes else "its approval window"
    # No team named (or the named team was deleted): the definition's owning team receives it.
    target = (request.escalate_to or journey.definition.owning_team) if request else None
    if request and request.on_timeout == OnTimeout.ESCALATE and request.escalated_at is None and target:
        # From now on the target team's members may decide this one item (``review.access``).
        team = target.name
        request.escalate_to, request.escalated_at = target, now
        request.save(update_fields=["escalate_to", "escalated_at"])
        lifecycle.escalate(
            proposal,
            expires_at=now + timedelta(minutes=minutes),
            summary=f"Nobody decided {proposal.action_type.name} within {waited}; escalated to {team} "
            f"for another {minutes} min.",
            data={"outcome": "escalated", "to": team},
        )
        return "escalated"
    reason = f"Nobody decided within {waited}; the approval expired."
    if not lifecycle.expire(
        proposal,
        now=now,
        reason=reason,
        summary=f"{proposal.action_type.name} expired unapproved after {waited}; a person takes over.",
    ):
        return None
    if journey.status == Journey.Status.WAITING_APPROVAL:
        # Hand over first: the journey must not wake for the agent while a person is needed.
        journey_hand_to_person(
            journey,
            reason=f"Approval of {proposal.action_type.name} expired: nobody decided within {waited}.",
            exception_kind=ExceptionKind.APPROVAL_EXPIRED,
            data={"proposal": proposal.pk},
        )
    proposal_settled(proposal, outcome="expired", reason=reason)
    return "fallback"


# --- after-the-fact review ------------------------------------------------------------------


@transaction.atomic
def sample_mark(*, sample: ReviewSample, user, verdict: str, note: str = "") -> ReviewSample:
    """Mark a sampled auto-approved action fine or wrong, once. Callers fetch ``sample`` through
    ``review.access.samples_for(user, Right.APPROVE)``."""
    note = (note or "").strip()
    if verdict not in (ReviewSample.Verdict.FINE, ReviewSample.Verdict.WRONG):
        raise DecisionError("Mark the action as fine or wrong.")
    if verdict == ReviewSample.Verdict.WRONG and not note:
        raise DecisionError("Say what was wrong, so the scopes or the agent can be fixed.")
    now = timezone.now()
    updated = ReviewSample.objects.filter(pk=sample.pk, verdict="").update(
        verdict=verdict, note=note, reviewed_by=user, reviewed_at=now
    )
    if not updated:
        current = ReviewSample.objects.select_related("reviewed_by").get(pk=sample.pk)
        raise DecisionError(
            f"Already marked {current.get_verdict_display().lower()} by "
            f"{current.reviewed_by.get_username()}. Nothing was changed."
        )
    sample.refresh_from_db()
    proposal = sample.proposal
    verdict_label = sample.get_verdict_display().lower()
    # An after-the-fact review is a person's judgement on the journey: it belongs in its record
    # (and so in the audit trail), without counting as a person stepping into the journey.
    events.record(
        proposal.journey,
        Event.Kind.ANNOTATION,
        f"After-the-fact review: {proposal.action_type.name} marked {verdict_label}" + (f": {note}" if note else "."),
        actor_kind=Event.Actor.PERSON,
        actor_user=user,
        proposal=proposal,
        step=proposal.step,
        data={"review_sample": sample.pk, "verdict": sample.verdict, "note": note},
    )
    return sample
