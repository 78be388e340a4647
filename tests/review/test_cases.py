"""Exception cases: opened by each trigger, grouped by signature, worked by people, audited."""

from __future__ import annotations

import pytest
from django.db import transaction

from journeys import events
from journeys.models import Event, ExceptionKind
from review.cases import services
from review.cases.services import CaseError
from review.models import Annotation, CaseGroup, ExceptionCase, Label

from .case_helpers import abandon, expire_proposal, hand_over, new_journey

pytestmark = pytest.mark.django_db


def test_exception_events_of_the_same_signature_share_one_group(demo):
    first = hand_over(new_journey(step="classify"), "low_confidence")
    second = hand_over(new_journey(customer="CUST-00002", step="classify"), "low_confidence")
    other_step = hand_over(new_journey(customer="CUST-00003", step="verify_identity"), "low_confidence")

    cases = {c.journey_id: c for c in ExceptionCase.objects.all()}
    assert set(cases) == {first.pk, second.pk, other_step.pk}
    assert cases[first.pk].group == cases[second.pk].group
    assert cases[other_step.pk].group != cases[first.pk].group
    group = cases[first.pk].group
    assert str(group) == "card dispute / classify / low confidence"
    assert cases[first.pk].kind == "low_confidence"
    assert cases[first.pk].status == ExceptionCase.Status.OPEN


def test_a_case_links_the_trigger_and_the_events_just_before_it(demo):
    journey = hand_over(new_journey(step="classify"), "low_confidence")
    case = ExceptionCase.objects.get(journey=journey)
    assert case.trigger_event.kind == Event.Kind.EXCEPTION
    linked = list(case.events.order_by("id").values_list("kind", flat=True))
    assert linked[-1] == Event.Kind.EXCEPTION
    assert Event.Kind.HANDED_TO_PERSON in linked
    assert len(linked) <= services.CONTEXT_EVENTS


def test_policy_denial_groups_by_the_rule_that_denied(demo):
    journey = hand_over(new_journey(step="provisional_credit"), "policy_denied", rule="refunds above 5000 denied")
    case = ExceptionCase.objects.get(journey=journey)
    assert case.kind == "policy_denied"
    assert case.cause == "refunds above 5000 denied"


def test_failed_steps_group_by_the_error_class_recorded_with_them_not_by_message(demo):
    a = hand_over(
        new_journey(step="open_case"),
        "step_failed",
        error="Core bank timed out after 3.2 s",
        error_class="CoreBankUnavailable",
    )
    b = hand_over(
        new_journey(customer="CUST-00002", step="open_case"),
        "step_failed",
        error="Connection reset by peer",
        error_class="CoreBankUnavailable",
    )
    c = hand_over(
        new_journey(customer="CUST-00003", step="open_case"),
        "step_failed",
        error="CoreBankUnavailable: but raised as another class",
        error_class="AgentTransientError",
    )
    case_a, case_b, case_c = (ExceptionCase.objects.get(journey=j) for j in (a, b, c))
    assert case_a.group == case_b.group
    assert case_a.cause == "CoreBankUnavailable"
    # The message's prefix says nothing: the structured class decides.
    assert case_c.cause == "AgentTransientError" and case_c.group != case_a.group


def test_a_message_without_a_structured_cause_groups_by_kind_and_step_only(demo):
    a = hand_over(new_journey(step="open_case"), "agent_error", "CoreBankRejected: account closed")
    b = hand_over(new_journey(customer="CUST-00002", step="open_case"), "agent_error", "Something else entirely")
    case_a, case_b = (ExceptionCase.objects.get(journey=j) for j in (a, b))
    assert case_a.cause == case_b.cause == ""
    assert case_a.group == case_b.group


def test_exception_kinds_are_one_enumeration_and_made_up_kinds_are_kept_as_given(demo):
    journey = hand_over(new_journey(step="classify"), "the_model_felt_unsure")
    case = ExceptionCase.objects.get(journey=journey)
    assert case.kind == ExceptionKind.AGENT_HANDOFF
    assert case.trigger_event.data["given_kind"] == "the_model_felt_unsure"
    assert ExceptionCase.Kind is ExceptionKind
    assert case.kind_title == "agent asked for a person"


def test_a_mid_journey_abandonment_opens_a_case_at_its_step(demo):
    journey = abandon(new_journey(definition="fee_refund", step="find_fee"))
    case = ExceptionCase.objects.get(journey=journey)
    assert case.kind == ExceptionCase.Kind.ABANDONED
    assert case.step == "find_fee"
    assert case.group.step == "find_fee"


def test_an_expired_approval_opens_a_case_under_its_rule(demo):
    journey = new_journey(step="provisional_credit")
    expire_proposal(journey, rule="refunds over 35 need approval", outcome="fallback")
    case = ExceptionCase.objects.get(journey=journey)
    assert case.kind == ExceptionCase.Kind.APPROVAL_EXPIRED
    assert case.cause == "refunds over 35 need approval"
    assert "fallback" in case.summary


def test_customer_complaints_and_vulnerable_customers_open_cases(demo):
    for kind in (
        "customer_complaint",
        "vulnerable_customer",
        "identity_not_verified",
        "quarantined",
    ):
        hand_over(new_journey(step="verify_identity"), kind)
    assert sorted(ExceptionCase.objects.values_list("kind", flat=True)) == [
        "customer_complaint",
        "identity_not_verified",
        "quarantined",
        "vulnerable_customer",
    ]


def test_no_case_survives_when_the_event_rolls_back(demo):
    journey = new_journey(step="classify")
    with pytest.raises(RuntimeError), transaction.atomic():
        events.record(journey, Event.Kind.EXCEPTION, "boom", data={"kind": "agent_error", "error": "x"})
        assert ExceptionCase.objects.filter(journey=journey).exists()
        raise RuntimeError("roll back")
    assert not ExceptionCase.objects.filter(journey=journey).exists()


def test_a_person_flags_a_journey_into_a_case_with_an_audit_event(demo, supervisor):
    journey = new_journey()
    label = Label.objects.get(key="agent-wrong")
    case = services.journey_flag(
        journey=journey, actor=supervisor, note="The agent misread the merchant.", labels=[label]
    )
    assert case.kind == ExceptionCase.Kind.FLAGGED
    assert case.flagged_by == supervisor
    assert case.trigger_event.kind == Event.Kind.ANNOTATION
    assert case.trigger_event.actor_user == supervisor
    assert case.trigger_event.data["action"] == "flag"
    assert list(case.annotations.get().labels.all()) == [label]
    with pytest.raises(CaseError):
        services.journey_flag(journey=journey, actor=supervisor, note="  ")


def test_annotating_a_case_or_an_event_records_an_annotation_event(demo, supervisor):
    journey = hand_over(new_journey(step="classify"), "low_confidence")
    case = ExceptionCase.objects.get(journey=journey)
    label = Label.objects.get(key="policy-gap")
    on_case = services.annotation_add(actor=supervisor, case=case, note="Bar too strict", labels=[label])
    timeline_event = journey.events.filter(kind=Event.Kind.STEP_STARTED).first()
    on_event = services.annotation_add(actor=supervisor, event=timeline_event, note="Slow start")

    for annotation in (on_case, on_event):
        audit = annotation.audit_event
        assert audit.kind == Event.Kind.ANNOTATION
        assert audit.actor_user == supervisor
        assert audit.journey_id == journey.pk
        assert audit.data["action"] == "annotate"
    assert on_case.audit_event.data["labels"] == ["policy-gap"]
    assert on_event.audit_event.data["event"] == timeline_event.pk
    with pytest.raises(CaseError):
        services.annotation_add(actor=supervisor, case=case, note="")


def test_assign_then_resolve_a_case_and_a_second_resolve_is_refused(demo, supervisor):
    journey = hand_over(new_journey(step="classify"), "low_confidence")
    case = ExceptionCase.objects.get(journey=journey)
    services.case_assign(case=case, assignee=supervisor, actor=supervisor)
    case.refresh_from_db()
    assert (case.status, case.assignee) == (ExceptionCase.Status.ASSIGNED, supervisor)

    services.case_resolve(case=case, resolution="agent_change", note="Retrained", actor=supervisor)
    case.refresh_from_db()
    assert case.status == ExceptionCase.Status.RESOLVED
    assert case.resolution == "agent_change"
    assert case.resolved_by == supervisor
    with pytest.raises(CaseError):
        services.case_resolve(case=case, resolution="fixed", note="", actor=supervisor)
    with pytest.raises(CaseError):
        services.case_assign(case=case, assignee=supervisor, actor=supervisor)
    actions = list(
        journey.events.filter(kind=Event.Kind.ANNOTATION).order_by("id").values_list("data__action", flat=True)
    )
    assert actions == ["assign", "resolve"]


def test_resolving_a_group_resolves_every_unresolved_case_in_it(demo, supervisor):
    journeys = [hand_over(new_journey(customer=f"CUST-0000{n}", step="classify"), "low_confidence") for n in (1, 2, 3)]
    group = CaseGroup.objects.get()
    first = ExceptionCase.objects.get(journey=journeys[0])
    services.case_resolve(case=first, resolution="fixed", note="", actor=supervisor)
    count = services.group_resolve(
        cases=list(group.cases.all()), resolution="expected", note="Bar is right", actor=supervisor
    )
    assert count == 2
    assert not group.cases.unresolved().exists()
    first.refresh_from_db()
    assert first.resolution == "fixed"  # the earlier resolution stands
    with pytest.raises(CaseError):
        services.group_resolve(cases=list(group.cases.all()), resolution="expected", note="", actor=supervisor)


def test_label_changes_are_sent_to_the_audit_trail(demo, admin_user):
    seen = []

    def listener(sender, **kwargs):
        seen.append(kwargs)

    events.governance_changed.connect(listener)
    try:
        label = services.label_create(actor=admin_user, name="Wrong amount", description="Refund amount off")
        services.label_update(
            actor=admin_user,
            label=label,
            name="Wrong amount",
            description="Refund amount off",
            is_active=False,
        )
        services.label_delete(actor=admin_user, label=label)
    finally:
        events.governance_changed.disconnect(listener)
    assert [s["kind"] for s in seen] == ["label_change"] * 3
    assert seen[0]["before"] is None and seen[0]["after"]["name"] == "Wrong amount"
    assert seen[1]["before"]["is_active"] is True and seen[1]["after"]["is_active"] is False
    assert seen[2]["after"] is None
    assert all(s["actor"] == admin_user for s in seen)


def test_a_used_label_cannot_be_deleted_only_retired(demo, supervisor, admin_user):
    journey = hand_over(new_journey(step="classify"), "low_confidence")
    label = Label.objects.get(key="system-fault")
    services.annotation_add(actor=supervisor, case=ExceptionCase.objects.get(journey=journey), note="", labels=[label])
    with pytest.raises(CaseError):
        services.label_delete(actor=admin_user, label=label)
    assert Annotation.objects.filter(labels=label).exists()


def test_the_starting_taxonomy_is_there(demo):
    assert set(Label.objects.values_list("name", flat=True)) >= {
        "Agent wrong",
        "Policy gap",
        "Customer confusion",
        "System fault",
    }


def test_a_fault_opening_a_case_never_rolls_back_the_journey_change(demo, monkeypatch):
    from review.cases import receivers

    def broken(event):
        raise RuntimeError("case store down")

    monkeypatch.setattr(receivers, "case_open_for_event", broken)
    journey = hand_over(new_journey(step="classify"), "low_confidence")
    journey.refresh_from_db()
    assert journey.status == "human"
    assert journey.events.filter(kind=Event.Kind.EXCEPTION).exists()
    assert not ExceptionCase.objects.exists()


def test_an_expiry_that_hands_to_a_person_is_one_case_in_one_group(demo, agent):
    """The expiry event and the hand-over that follows it share one case under the rule."""
    from datetime import timedelta

    from django.utils import timezone

    from journeys.models import ProposedAction
    from review.services import proposals_expire

    from .helpers import refund, start

    for customer in ("CUST-00008", "CUST-00009"):
        pending = refund(start("card_dispute", customer=customer), "120.00", agent=agent)
        ProposedAction.objects.filter(pk=pending.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert proposals_expire() == {"escalated": 0, "fallback": 2}
    cases = ExceptionCase.objects.filter(kind=ExceptionCase.Kind.APPROVAL_EXPIRED)
    assert cases.count() == 2  # one per expiry, not one per event
    assert cases.values("group").distinct().count() == 1
    assert cases.first().group.cause == pending.decision_rule != ""
