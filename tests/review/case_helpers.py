"""Building journeys and their exceptions directly, without the runtime."""

from __future__ import annotations

from typing import Any

from journeys import events
from journeys.models import ActionType, Event, Journey, ProposedAction
from journeys.services import journey_finish, journey_hand_to_person, journey_start, lock_journey


def new_journey(definition: str = "card_dispute", customer: str = "CUST-00001", step: str | None = None) -> Journey:
    journey = journey_start(definition=definition, customer_ref=customer, request={})
    if step:
        Journey.objects.filter(pk=journey.pk).update(current_step=step)
        journey.refresh_from_db()
    return journey


def hand_over(journey: Journey, kind: str, reason: str = "Needs a person.", **data: Any) -> Journey:
    locked = lock_journey(journey.pk)
    journey_hand_to_person(locked, reason=reason, exception_kind=kind, data=data or None)
    return locked


def abandon(journey: Journey) -> Journey:
    locked = lock_journey(journey.pk)
    journey_finish(locked, Journey.Status.ABANDONED, "The customer left.", data={"step": locked.current_step})
    return locked


def expire_proposal(
    journey: Journey, *, rule: str = "refunds over 35 need approval", outcome: str = "escalated"
) -> ProposedAction:
    proposal = ProposedAction.objects.create(
        journey=journey,
        action_type=ActionType.objects.get(key="issue_refund"),
        params={"account": "ACC-1", "amount": "120.00", "reason": "provisional credit"},
        step=journey.current_step,
        idempotency_key=f"test-expire-{journey.pk}-{ProposedAction.objects.count()}",
        status=ProposedAction.Status.EXPIRED,
        decision_effect="require_approval",
        decision_rule=rule,
    )
    events.record(
        journey,
        Event.Kind.ACTION_EXPIRED,
        "Nobody decided in time.",
        proposal=proposal,
        data={"outcome": outcome},
    )
    return proposal
