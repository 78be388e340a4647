"""The policy engine: scopes, precedence, explanations, conditions, people's own proposals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from journeys.models import ActionType, Agent, Event, JourneyDefinition, ProposedAction
from review.models import ApprovalRequest, PermissionScope, ReviewSample
from review.policy import NO_RULE, condition_holds

from .helpers import propose, refund, start

S = ProposedAction.Status
E = ProposedAction.Effect


@pytest.fixture
def journey(demo):
    return start("fee_refund")


@pytest.mark.parametrize(
    ("amount", "status", "required"),
    [
        ("12.00", S.AUTO_APPROVED, 0),
        ("35.00", S.AUTO_APPROVED, 0),
        ("35.01", S.PENDING, 1),
        ("500.00", S.PENDING, 1),
        ("500.01", S.PENDING, 2),
        ("5000.00", S.PENDING, 2),
        ("5000.01", S.DENIED, 0),
    ],
)
def test_demo_refund_tiers_decide_by_amount(journey, agent, amount, status, required):
    proposal = refund(journey, amount, agent=agent)
    assert proposal.status == status, proposal.decision_explanation
    assert proposal.required_approvals == required


def test_every_decision_names_its_rule_and_explains_itself_in_one_sentence(journey, agent):
    proposal = refund(journey, "240.00", agent=agent)
    assert proposal.decision_rule == "Refunds over 35.00 up to 500.00 need one approver"
    assert proposal.decision_explanation == (
        "Issue refund of 240.00 needs approval: rule 'Refunds over 35.00 up to 500.00 need one approver' "
        "(amount > 35.00 and amount ≤ 500.00)."
    )
    decided = proposal.events.get(kind=Event.Kind.ACTION_DECIDED)
    assert decided.data["rule"] == proposal.decision_rule
    assert decided.summary == proposal.decision_explanation


def test_no_matching_rule_means_deny(journey, agent):
    PermissionScope.objects.filter(action_type__key="send_letter").delete()
    proposal = propose(
        journey, "send_letter", {"customer": "CUST-00001", "address": "1 High St", "text": "Hi"}, agent=agent
    )
    assert proposal.status == S.DENIED
    assert proposal.decision_rule == NO_RULE
    assert "no matching rule means deny" in proposal.decision_explanation


def test_a_disabled_scope_does_not_match(journey, agent):
    PermissionScope.objects.filter(action_type__key="block_card").update(is_enabled=False)
    proposal = propose(journey, "block_card", {"card": "tok_card_00001", "reason": "lost"}, agent=agent)
    assert proposal.status == S.DENIED


def test_more_specific_rule_wins_over_a_general_one(journey, agent):
    PermissionScope.objects.create(
        name="Fee refunds: blocks need approval",
        effect=E.REQUIRE_APPROVAL,
        action_type=ActionType.objects.get(key="block_card"),
        definition=JourneyDefinition.objects.get(key="fee_refund"),
    )
    proposal = propose(journey, "block_card", {"card": "tok_card_00001", "reason": "lost"}, agent=agent)
    assert proposal.status == S.PENDING
    assert proposal.decision_rule == "Fee refunds: blocks need approval"


def test_a_named_agent_beats_a_definition_rule(journey, agent):
    block = ActionType.objects.get(key="block_card")
    PermissionScope.objects.create(
        name="Fee refunds: blocks need approval",
        effect=E.REQUIRE_APPROVAL,
        action_type=block,
        definition=JourneyDefinition.objects.get(key="fee_refund"),
    )
    PermissionScope.objects.create(name="The scripted agent may block", effect=E.ALLOW, action_type=block, agent=agent)
    proposal = propose(journey, "block_card", {"card": "tok_card_00001", "reason": "lost"}, agent=agent)
    assert proposal.status == S.AUTO_APPROVED
    assert proposal.decision_rule == "The scripted agent may block"


def test_deny_wins_over_allow_at_equal_specificity(journey, agent):
    PermissionScope.objects.create(
        name="No blocks today", effect=E.DENY, action_type=ActionType.objects.get(key="block_card")
    )
    proposal = propose(journey, "block_card", {"card": "tok_card_00001", "reason": "lost"}, agent=agent)
    assert proposal.status == S.DENIED
    assert proposal.decision_rule == "No blocks today"


def test_a_rule_for_an_agent_group_never_matches_a_persons_proposal(journey, agent, supervisor2):
    block = ActionType.objects.get(key="block_card")
    PermissionScope.objects.create(
        name="Demo agents may not block", effect=E.DENY, action_type=block, agent_group="demo"
    )
    by_agent = propose(journey, "block_card", {"card": "tok_card_00001", "reason": "lost"}, agent=agent)
    by_person = propose(journey, "block_card", {"card": "tok_card_00001", "reason": "lost"}, user=supervisor2)
    assert by_agent.status == S.DENIED
    assert by_person.status == S.AUTO_APPROVED
    assert by_person.decision_rule == "Card blocks are allowed"


def test_a_persons_own_refund_goes_through_the_same_engine(journey, supervisor2):
    proposal = refund(journey, "120.00", user=supervisor2)
    assert proposal.proposed_by_agent is None
    assert proposal.status == S.PENDING
    assert ApprovalRequest.objects.get(proposal=proposal).proposer_user == supervisor2


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"expedited": False, "premium": False}, S.AUTO_APPROVED),
        ({"expedited": True, "premium": False}, S.PENDING),
        ({"expedited": True}, S.PENDING),
        ({"expedited": True, "premium": True}, S.AUTO_APPROVED),
        ({"expedited": False, "premium": True, "address_recently_changed": True}, S.PENDING),
    ],
)
def test_replacement_cards_need_approval_when_expedited_for_non_premium_or_address_changed(demo, agent, params, status):
    journey = start("lost_card")
    proposal = propose(journey, "order_card", {"account": "ACC-000001", "address": "1 High St", **params}, agent=agent)
    assert proposal.status == status


def test_address_update_needs_approval_after_recent_contact_changes(demo, agent):
    journey = start("address_change")
    calm = propose(journey, "update_address", {"customer": "CUST-00001", "address": "1 High St"}, agent=agent)
    risky = propose(
        journey,
        "update_address",
        {"customer": "CUST-00001", "address": "1 High St", "recent_changes": True},
        agent=agent,
    )
    assert calm.status == S.AUTO_APPROVED
    assert risky.status == S.PENDING
    assert risky.decision_rule == "Address update after recent contact changes needs approval"


@pytest.mark.parametrize(
    ("condition", "params", "holds"),
    [
        ({"param": "amount", "op": "<=", "value": "100"}, {"amount": "100.00"}, True),
        ({"param": "amount", "op": "<", "value": "100"}, {"amount": "100.00"}, False),
        ({"param": "amount", "op": ">=", "value": "100"}, {"amount": "99.99"}, False),
        ({"param": "amount", "op": "<=", "value": "100"}, {"amount": "lots"}, False),
        ({"param": "kind", "op": "==", "value": "fraud"}, {"kind": "fraud"}, True),
        ({"param": "kind", "op": "in", "value": ["fraud", "dispute"]}, {"kind": "dispute"}, True),
        ({"param": "kind", "op": "not in", "value": ["fraud", "dispute"]}, {"kind": "complaint"}, True),
        ({"param": "premium", "op": "!=", "value": True}, {}, True),
        ({"param": "premium", "op": "==", "value": True}, {}, False),
        ({"param": "premium", "op": "==", "value": True}, {"premium": True}, True),
        ({"param": "premium", "op": "==", "value": True}, {"premium": False}, False),
    ],
)
def test_conditions_compare_numbers_as_decimals_and_strings_by_equality(condition, params, holds):
    assert condition_holds(condition, params) is holds


def test_an_auto_approved_action_is_sampled_at_the_configured_share(journey, agent, settings):
    settings.HANDOFF = {**settings.HANDOFF, "REVIEW_SAMPLE_SHARE": 1.0}
    sampled = refund(journey, "20.00", agent=agent)
    read = propose(journey, "lookup_fees", {"account": "ACC-000001"}, agent=agent)
    pending = refund(journey, "200.00", agent=agent)
    assert ReviewSample.objects.filter(proposal=sampled).exists()
    assert not ReviewSample.objects.filter(proposal__in=[read, pending]).exists()
    settings.HANDOFF = {**settings.HANDOFF, "REVIEW_SAMPLE_SHARE": 0.0}
    assert not ReviewSample.objects.filter(proposal=refund(journey, "21.00", agent=agent)).exists()


def test_pending_action_gets_the_rules_timeout(journey, agent):
    proposal = refund(journey, "100.00", agent=agent)
    request = ApprovalRequest.objects.get(proposal=proposal)
    assert request.timeout_minutes == 10
    assert request.proposer_user == agent.user
    waited = proposal.expires_at - proposal.created_at
    assert abs(waited.total_seconds() - 600) < 5


def test_demo_scopes_install_idempotently_and_keep_admin_edits(demo):
    from demo.scopes import install_demo_scopes

    PermissionScope.objects.filter(name="Refunds up to 35.00 are automatic").update(
        conditions=[{"param": "amount", "op": "<=", "value": "20.00"}]
    )
    assert install_demo_scopes() == 0
    assert PermissionScope.objects.get(name="Refunds up to 35.00 are automatic").conditions[0]["value"] == "20.00"
    assert Decimal(PermissionScope.objects.filter(effect=E.DENY).get().conditions[0]["value"]) == Decimal("5000")


def test_unknown_agent_has_no_special_rights(journey):
    ghost = Agent.objects.create(
        user=__import__("django.contrib.auth", fromlist=["get_user_model"])
        .get_user_model()
        .objects.create_user("ghost-agent"),
        name="Ghost",
        group="other",
    )
    proposal = refund(journey, "10.00", agent=ghost)
    assert proposal.status == S.AUTO_APPROVED  # scopes for anyone apply to every agent
