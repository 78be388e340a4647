"""The hand-built data set of ``test_metric_definitions`` (its docstring works out the figures)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from console.metrics.rollups import rollup_rebuild
from journeys.models import ActionType, Event, Journey, JourneyDefinition, ProposedAction
from review.cases.services import case_open_for_event

DAY = date(2026, 3, 2)


def at(hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(2026, 3, 2, hh, mm, ss, tzinfo=UTC)


class Builder:
    def __init__(self) -> None:
        self.definition = JourneyDefinition.objects.get(key="fee_refund")
        self.version = self.definition.current_version()
        self.n = 0

    def journey(self, customer: str, start: datetime, end: datetime | None, status: str) -> Journey:
        return Journey.objects.create(
            definition=self.definition,
            version=self.version,
            customer_ref=customer,
            status=status,
            current_step="verify_identity",
            sla_deadline=start + timedelta(hours=1),
            created_at=start,
            finished_at=end,
        )

    def event(
        self,
        journey: Journey,
        event_kind: str,
        when: datetime,
        at_step: str = "",
        *,
        person=None,
        proposal=None,
        **data,
    ) -> Event:
        return Event.objects.create(
            journey=journey,
            kind=event_kind,
            at=when,
            step=at_step,
            summary=event_kind,
            actor_kind=Event.Actor.PERSON if person else Event.Actor.AGENT,
            actor_user=person,
            proposal=proposal,
            data=data,
        )

    def step(self, journey: Journey, key: str, start: datetime, seconds: int | None) -> None:
        self.event(journey, Event.Kind.STEP_STARTED, start, key)
        if seconds is not None:
            self.event(journey, Event.Kind.STEP_FINISHED, start + timedelta(seconds=seconds), key)

    def proposal(self, journey: Journey, amount: str, created: datetime, rule: str, status: str) -> ProposedAction:
        self.n += 1
        return ProposedAction.objects.create(
            journey=journey,
            action_type=ActionType.objects.get(key="issue_refund"),
            params={"account": "ACC-1", "amount": amount, "reason": "fee reversal"},
            step="refund",
            idempotency_key=f"hand-{self.n}",
            status=status,
            decision_rule=rule,
            created_at=created,
        )


def build_hand_data(*, settings, supervisor2) -> JourneyDefinition:
    """Build the data set and its roll-ups; returns the fee refund definition. Needs the demo."""
    settings.METRICS_HIGH_VALUE_AMOUNT = 100
    settings.METRICS_QUICK_DECISION_SECONDS = 10
    b = Builder()
    approval_rule = "fee refunds over 35 need one approval"
    j1 = b.journey("C1", at(9), at(9, 10), Journey.Status.COMPLETED)
    b.step(j1, "verify_identity", at(9), 120)
    b.step(j1, "find_fee", at(9, 2), 180)
    b.event(j1, Event.Kind.COMPLETED, at(9, 10))

    j2 = b.journey("C2", at(10), at(10, 30), Journey.Status.COMPLETED)
    b.step(j2, "verify_identity", at(10), 60)
    b.step(j2, "find_fee", at(10, 1), 180)
    b.step(j2, "check_eligibility", at(10, 4), None)
    b.event(j2, Event.Kind.HANDED_TO_PERSON, at(10, 5), "check_eligibility")
    exc = b.event(j2, Event.Kind.EXCEPTION, at(10, 5), "check_eligibility", kind="low_confidence")
    b.event(j2, Event.Kind.TAKEOVER, at(10, 6), "check_eligibility", person=supervisor2)
    b.event(j2, Event.Kind.COMPLETED, at(10, 30))

    j3 = b.journey("C2", at(12), at(12, 10), Journey.Status.ABANDONED)
    b.step(j3, "verify_identity", at(12), 180)
    b.step(j3, "find_fee", at(12, 3), None)
    abandoned = b.event(j3, Event.Kind.ABANDONED, at(12, 10), "find_fee", step="find_fee")

    j4 = b.journey("C3", at(13), at(13, 20), Journey.Status.COMPLETED)
    b.step(j4, "verify_identity", at(13), 30)
    big = b.proposal(j4, "200.00", at(13, 1), approval_rule, ProposedAction.Status.EXECUTED)
    b.event(
        j4,
        Event.Kind.ACTION_APPROVED,
        at(13, 1, 4),
        "refund",
        person=supervisor2,
        proposal=big,
        approver="supervisor2",
        partial=False,
        edited=False,
    )
    small = b.proposal(j4, "50.00", at(13, 2), approval_rule, ProposedAction.Status.EXECUTED)
    b.event(
        j4,
        Event.Kind.ACTION_APPROVED,
        at(13, 2, 30),
        "refund",
        person=supervisor2,
        proposal=small,
        approver="supervisor2",
        partial=False,
        edited=True,
        before={"amount": "60.00"},
        after={"amount": "50.00"},
    )
    b.event(j4, Event.Kind.COMPLETED, at(13, 20))

    j5 = b.journey("C4", at(14), at(14, 5), Journey.Status.FAILED)
    b.step(j5, "verify_identity", at(14), None)
    b.event(j5, Event.Kind.TURN_FAILED, at(14, 1), "verify_identity", error="x")
    rejected = b.proposal(j5, "80.00", at(14, 2), approval_rule, ProposedAction.Status.REJECTED)
    b.event(
        j5,
        Event.Kind.ACTION_REJECTED,
        at(14, 3),
        "refund",
        person=supervisor2,
        proposal=rejected,
        reason="Not eligible",
    )
    denied = b.proposal(j5, "9000.00", at(14, 4), "refunds above 5000 denied", ProposedAction.Status.DENIED)
    b.event(
        j5,
        Event.Kind.ACTION_DECIDED,
        at(14, 4),
        "refund",
        proposal=denied,
        effect="deny",
        rule="refunds above 5000 denied",
    )
    b.event(j5, Event.Kind.FAILED, at(14, 5))

    case_open_for_event(exc)
    case_open_for_event(abandoned)
    rollup_rebuild()
    return b.definition
