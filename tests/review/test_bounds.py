"""Bounded parameters: an action may only name the journey's own customer's resources, on every
path (agent, person in control, Edit & approve), and money limits count for the owner of the
account the money goes to."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from demo.models import CoreCase, CoreEffect, CoreTransaction
from journeys.actions import ACTION_SPECS
from journeys.bounds import RULE, check_bounded
from journeys.control import journey_take_over
from journeys.corebank import get_core_bank
from journeys.corebank.base import ResourceKind
from journeys.models import ActionType, Event, ProposedAction
from journeys.services import journey_hand_to_person, lock_journey, proposal_create
from review.models import ExceptionCase, LimitCounter
from review.policy import limits_consume
from review.services import proposal_approve

from .helpers import account_of, propose, refund, start

S = ProposedAction.Status
PER_CUSTOMER = "Refunds per customer: 300.00 per 30 days without approval"


def _cases(journey) -> list[ExceptionCase]:
    return list(ExceptionCase.objects.filter(journey=journey))


# --- the schema and the core bank's answer -------------------------------------------------------


def test_every_parameter_naming_a_bank_resource_declares_its_kind(demo):
    names = {"customer": "customer", "account": "account", "card": "card", "transaction": "transaction"}
    for spec in ACTION_SPECS.values():
        for name, param in spec.params.items():
            if name in names:
                assert param.resource == names[name], f"{spec.key}.{name} does not declare its resource kind"
        schema = ActionType.objects.get(key=spec.key).param_schema
        assert {k for k, v in schema.items() if v.get("resource")} == set(spec.resource_params())


def test_the_core_bank_answers_who_owns_many_resources_in_one_question(demo, django_assert_max_num_queries):
    purchase = CoreTransaction.objects.filter(account__number="ACC-000003").first()
    case = CoreCase.objects.create(customer_id=purchase.account.customer_id, kind="dispute")
    asked = [
        (ResourceKind.CUSTOMER, "CUST-00001"),
        (ResourceKind.ACCOUNT, "ACC-000002"),
        (ResourceKind.CARD, "tok_card_00004"),
        (ResourceKind.TRANSACTION, str(purchase.pk)),
        (ResourceKind.CASE, f"CASE-{case.pk:06d}"),
        (ResourceKind.ACCOUNT, "ACC-999999"),
        (ResourceKind.TRANSACTION, "9" * 40),  # not a row id: unknown, and no SQL overflow
        (ResourceKind.CASE, "x'; DROP TABLE"),
    ]
    with django_assert_max_num_queries(5):  # one query per kind
        owners = get_core_bank().resource_owners(asked)
    assert owners == {
        (ResourceKind.CUSTOMER, "CUST-00001"): "CUST-00001",
        (ResourceKind.ACCOUNT, "ACC-000002"): "CUST-00002",
        (ResourceKind.CARD, "tok_card_00004"): "CUST-00004",
        (ResourceKind.TRANSACTION, str(purchase.pk)): "CUST-00003",
        (ResourceKind.CASE, f"CASE-{case.pk:06d}"): "CUST-00003",
        (ResourceKind.ACCOUNT, "ACC-999999"): None,
        (ResourceKind.TRANSACTION, "9" * 40): None,
        (ResourceKind.CASE, "x'; DROP TABLE"): None,
    }
    assert get_core_bank().customer_owns("CUST-00002", ResourceKind.ACCOUNT, "ACC-000002")
    assert not get_core_bank().customer_owns("CUST-00001", ResourceKind.ACCOUNT, "ACC-000002")


def test_check_bounded_names_each_foreign_resource(demo):
    params = {"account": "ACC-000001", "amount": "20.00", "reason": "x", "customer": "CUST-00012"}
    messages = [v.message for v in check_bounded("issue_refund", params, "CUST-00012")]
    assert messages == ["account ACC-000001 does not belong to CUST-00012"]
    ghost = {"customer": "CUST-00086", "text": "Hello"}
    assert [v.message for v in check_bounded("send_message", ghost, "CUST-00086")] == [
        "customer CUST-00086 is not known to the core bank"
    ]
    params = {"account": "ACC-000404", "amount": "20.00", "reason": "x", "customer": "CUST-00001"}
    assert [v.message for v in check_bounded("issue_refund", params, "CUST-00002")] == [
        "account ACC-000404 is not known to the core bank, so it does not belong to CUST-00002",
        "customer CUST-00001 is not the journey's customer CUST-00002",
    ]
    assert (
        check_bounded("issue_refund", {**params, "account": "ACC-000002", "customer": "CUST-00002"}, "CUST-00002") == []
    )


# --- the reported hole: a person in control -----------------------------------------------------


def test_a_person_in_control_cannot_refund_one_customers_journey_to_another_customers_account(client, supervisor, demo):
    journey = start("card_dispute", customer="CUST-00002")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    client.force_login(supervisor)
    response = client.post(
        reverse("journey_propose", args=[journey.pk]),
        {
            "action": "issue_refund",
            "issue_refund-account": "ACC-000001",  # forged: not one of the offered choices
            "issue_refund-amount": "20.00",
            "issue_refund-reason": "goodwill",
            "explanation": "goodwill",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "account ACC-000001 does not belong to CUST-00002" in response.content.decode()
    proposal = ProposedAction.objects.get(journey=journey)
    assert proposal.status == S.DENIED and proposal.decision_rule == RULE
    assert not CoreEffect.objects.filter(action="issue_refund").exists()
    refusal = Event.objects.get(journey=journey, kind=Event.Kind.EXCEPTION)
    assert refusal.data["kind"] == "out_of_bounds" and refusal.actor_user == supervisor
    assert refusal.data["violations"] == [
        {"param": "account", "kind": "account", "reference": "ACC-000001", "owner": "CUST-00001"}
    ]
    [case] = _cases(journey)
    assert case.kind == ExceptionCase.Kind.OUT_OF_BOUNDS and case.trigger_event == refusal
    assert "does not belong to CUST-00002" in case.summary


def test_a_refund_to_the_customers_own_account_still_goes_through(client, supervisor, demo):
    journey = start("card_dispute", customer="CUST-00002")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    client.force_login(supervisor)
    client.post(
        reverse("journey_propose", args=[journey.pk]),
        {
            "action": "issue_refund",
            "issue_refund-account": "ACC-000002",
            "issue_refund-amount": "20.00",
            "issue_refund-reason": "goodwill",
            "explanation": "x",
        },
    )
    assert ProposedAction.objects.get(journey=journey).status == S.EXECUTED
    assert not _cases(journey)


# --- the reported hole: an edit ----------------------------------------------------------------


def test_an_edit_cannot_send_a_refund_to_another_customers_account(client, supervisor, agent):
    journey = start("card_dispute", customer="CUST-00001")
    pending = refund(journey, "120.00", agent=agent)
    client.force_login(supervisor)
    response = client.post(
        reverse("review_edit", args=[pending.pk]),
        {**pending.params, "account": "ACC-000005", "edit_reason": "customer asked"},
    )
    assert response.status_code == 400
    assert "account ACC-000005 does not belong to CUST-00001" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == S.PENDING and pending.params["account"] == "ACC-000001"
    assert not pending.approvals.exists()
    refusal = Event.objects.get(journey=journey, kind=Event.Kind.EXCEPTION)
    assert refusal.data["kind"] == "out_of_bounds" and refusal.data["edit"] is True
    assert refusal.proposal_id == pending.pk and refusal.actor_user == supervisor
    assert [c.kind for c in _cases(journey)] == [ExceptionCase.Kind.OUT_OF_BOUNDS]
    # The proposal as the agent made it can still be decided.
    assert proposal_approve(proposal_id=pending.pk, user=supervisor).outcome == "approved"


# --- the agent's path ---------------------------------------------------------------------------


def test_an_agent_naming_another_customers_card_is_refused_with_one_case(demo, agent):
    journey = start("lost_card", customer="CUST-00001")
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        proposal = proposal_create(
            locked,
            action="block_card",
            params={"card": "tok_card_00002", "reason": "lost"},
            explanation="Block it.",
            key="bounds-agent-1",
            agent=agent,
        )
        # What the runtime does with a denied proposal: hand the journey to a person.
        journey_hand_to_person(
            locked,
            reason=f"Policy denied {proposal.action_type.name}: {proposal.decision_explanation}",
            exception_kind="policy_denied",
            data={"proposal": proposal.pk, "rule": proposal.decision_rule},
        )
    assert proposal.status == S.DENIED
    assert proposal.decision_explanation.startswith("Refused: card tok_card_00002 does not belong to CUST-00001")
    [case] = _cases(journey)
    assert case.kind == ExceptionCase.Kind.OUT_OF_BOUNDS
    assert case.events.filter(kind=Event.Kind.EXCEPTION).count() == 2


def test_a_message_to_another_customer_is_refused(demo, agent):
    journey = start("fee_refund", customer="CUST-00001")
    proposal = propose(journey, "send_message", {"customer": "CUST-00002", "text": "Hello"}, agent=agent)
    assert proposal.status == S.DENIED
    assert "customer CUST-00002 is not the journey's customer CUST-00001" in proposal.decision_explanation


# --- limits count for the owner of the money's destination --------------------------------------


def _stored_refund(journey, account: str, amount: str, n: int) -> ProposedAction:
    """A refund that reached the limits without the bounds check (made before it existed, or by
    another policy engine): the limits must still count it for the account's owner."""
    return ProposedAction.objects.create(
        journey=journey,
        action_type=ActionType.objects.get(key="issue_refund"),
        params={"account": account, "amount": amount, "reason": "goodwill"},
        step=journey.current_step,
        idempotency_key=f"bounds-stored-{journey.pk}-{n}",
        status=S.AUTO_APPROVED,
    )


def test_the_per_customer_limit_counts_for_the_owner_of_the_destination_account(demo, agent):
    elsewhere = start("card_dispute", customer="CUST-00002")
    with transaction.atomic():
        for n in range(10):
            limits_consume(_stored_refund(elsewhere, account_of("CUST-00003"), "30.00", n))
    counter = LimitCounter.objects.get(limit__name=PER_CUSTOMER)
    assert counter.subject_key == "customer:CUST-00003"
    # CUST-00003's own journey now finds the 300.00 budget used.
    own = start("fee_refund", customer="CUST-00003")
    over = refund(own, "10.00", agent=agent)
    assert over.status == S.PENDING and over.decision_rule == PER_CUSTOMER
    assert "300.00 is already used for customer CUST-00003" in over.decision_explanation
    # …and CUST-00002's budget is untouched.
    assert refund(start("fee_refund", customer="CUST-00002"), "30.00", agent=agent).status == S.AUTO_APPROVED
