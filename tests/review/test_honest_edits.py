"""Honest edits: only declared parameters change, identity never; a narrowing edit may be
approved by its editor, any other edit makes the editor the maker and needs a second person;
an edit is its own event and what the agent proposed stays on record."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.urls import reverse

from journeys.actions import ACTION_SPECS
from journeys.lifecycle import transitions_for
from journeys.models import Event, ProposedAction
from review.models import Approval
from review.services import DecisionError, proposal_approve, proposal_edit_approve

from .helpers import account_of, propose, refund, start

S = ProposedAction.Status
IDENTITY = {"customer", "account", "card", "transaction"}


@pytest.fixture
def dispute(demo):
    return start("card_dispute", customer="CUST-00008")


@pytest.fixture
def cards_colleague(demo):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("carla", password="demo")
    user.groups.add(Group.objects.get(name="Cards team"))
    return user


def _reload(proposal: ProposedAction) -> ProposedAction:
    return ProposedAction.objects.get(pk=proposal.pk)


def test_every_action_type_declares_its_editable_parameters_and_identity_is_never_one():
    for spec in ACTION_SPECS.values():
        assert not IDENTITY & set(spec.editable_params), spec.key
    assert ACTION_SPECS["issue_refund"].editable_params == ["amount", "reason"]


def _refund_without_customer(journey, agent) -> ProposedAction:
    return propose(
        journey,
        "issue_refund",
        {"account": account_of(journey.customer_ref), "amount": "120.00", "reason": "fee reversal"},
        agent=agent,
    )


def test_an_edit_of_an_identity_parameter_is_refused_on_the_service(dispute, agent, supervisor):
    pending = _refund_without_customer(dispute, agent)
    assert pending.status == S.PENDING
    # Even naming the journey's own customer: identity is not editable.
    with pytest.raises(DecisionError, match="customer cannot be edited"):
        proposal_edit_approve(
            proposal_id=pending.pk,
            user=supervisor,
            params={**pending.params, "customer": dispute.customer_ref, "amount": "100.00"},
            reason="add the customer",
        )
    # Another customer's account is refused (and recorded) before anything else.
    result = proposal_edit_approve(
        proposal_id=pending.pk,
        user=supervisor,
        params={**pending.params, "account": "ACC-000001", "amount": "100.00"},
        reason="redirect it",
    )
    assert result.outcome == "refused"
    fresh = _reload(pending)
    assert fresh.params == pending.params and fresh.status == S.PENDING
    assert not Event.objects.filter(proposal=pending, kind=Event.Kind.ACTION_EDITED).exists()


def test_the_edit_form_shows_identity_read_only_and_refuses_a_forged_post(client, dispute, agent, supervisor):
    pending = _refund_without_customer(dispute, agent)
    client.force_login(supervisor)
    url = reverse("review_edit", args=[pending.pk])
    page = client.get(url).content.decode()
    assert 'name="amount"' in page and 'name="reason"' in page
    assert 'name="account"' not in page and 'name="customer"' not in page
    assert 'data-fixed="account"' in page
    for forged, message in (
        ({"customer": dispute.customer_ref}, "customer cannot be edited"),
        ({"account": "ACC-000001"}, "does not belong to"),
    ):
        response = client.post(url, {**forged, "amount": "100.00", "reason": "x", "edit_reason": "forged"})
        assert response.status_code == 400
        assert message in response.content.decode()
        assert _reload(pending).params == pending.params
    # An honest POST through the same form narrows and approves.
    response = client.post(url, {"amount": "100.00", "reason": "fee reversal", "edit_reason": "only the fee"})
    assert response.status_code == 302
    fresh = _reload(pending)
    assert fresh.status == S.APPROVED and fresh.params["amount"] == "100.00"
    assert fresh.params["account"] == pending.params["account"]


def test_a_narrowing_edit_is_approved_by_its_editor_and_is_its_own_event(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    proposed = Event.objects.get(proposal=pending, kind=Event.Kind.ACTION_PROPOSED)
    result = proposal_edit_approve(
        proposal_id=pending.pk,
        user=supervisor,
        params={**pending.params, "amount": "80.00"},
        reason="only the fee is refundable",
    )
    assert result.outcome == "approved"
    fresh = _reload(pending)
    assert fresh.status == S.APPROVED and fresh.maker_user_id is None
    edited = Event.objects.get(proposal=pending, kind=Event.Kind.ACTION_EDITED)
    assert edited.actor_user == supervisor
    assert edited.data == {
        "before": pending.params,
        "after": {**pending.params, "amount": "80.00"},
        "changed": ["amount"],
        "reason": "only the fee is refundable",
        "narrowing": True,
    }
    # What the agent proposed stays on record as proposed.
    proposed.refresh_from_db()
    assert proposed.data["params"]["amount"] == "120.00"
    assert proposed.pk < edited.pk


@pytest.mark.parametrize(
    "change",
    [{"amount": "150.00"}, {"reason": "goodwill"}, {"amount": "80.00", "reason": "goodwill"}],
    ids=["higher-amount", "other-reason", "lower-amount-and-reason"],
)
def test_any_other_edit_makes_the_editor_the_maker_and_a_second_person_decides(
    dispute, agent, supervisor, cards_colleague, change
):
    pending = refund(dispute, "120.00", agent=agent)
    result = proposal_edit_approve(
        proposal_id=pending.pk, user=supervisor, params={**pending.params, **change}, reason="customer asked"
    )
    assert result.outcome == "edited"
    fresh = _reload(pending)
    assert fresh.status == S.PENDING and fresh.maker_user_id == supervisor.pk
    assert not fresh.approvals.filter(dropped_at__isnull=True).exists()
    edited = Event.objects.get(proposal=pending, kind=Event.Kind.ACTION_EDITED)
    assert edited.data["narrowing"] is False and edited.data["changed"] == sorted(change)
    # The editor's approval does not count for what they wrote…
    assert "approve" not in transitions_for(supervisor, fresh)
    with pytest.raises(DecisionError, match="maker"):
        proposal_approve(proposal_id=pending.pk, user=supervisor)
    # …and a narrowing edit does not launder it either.
    with pytest.raises(DecisionError, match="maker"):
        proposal_edit_approve(
            proposal_id=pending.pk,
            user=supervisor,
            params={**fresh.params, "amount": "10.00"},
            reason="lower",
        )
    assert "approve" in transitions_for(cards_colleague, fresh)
    assert proposal_approve(proposal_id=pending.pk, user=cards_colleague).outcome == "approved"
    assert _reload(pending).status == S.APPROVED


def test_the_database_refuses_an_approval_by_the_maker_even_through_the_orm(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_edit_approve(
        proposal_id=pending.pk, user=supervisor, params={**pending.params, "amount": "150.00"}, reason="more"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(proposal=pending, approver=supervisor, maker_user=None)


def test_a_widening_edit_is_still_rechecked_by_the_rules(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    with pytest.raises(DecisionError, match="deny"):
        proposal_edit_approve(
            proposal_id=pending.pk, user=supervisor, params={**pending.params, "amount": "9000.00"}, reason="all"
        )
    assert _reload(pending).params == pending.params


def test_an_edit_needs_a_reason_on_the_form(client, dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    client.force_login(supervisor)
    response = client.post(reverse("review_edit", args=[pending.pk]), {"amount": "100.00", "reason": "fee reversal"})
    assert response.status_code == 400
    assert "An edit needs a reason" in response.content.decode()
    assert _reload(pending).status == S.PENDING
