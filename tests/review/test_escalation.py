"""Escalation on timeout: the target team receives the one item and decides it within its limit.

The demo's two-approver refund rule (over 500.00) escalates to the Escalations desk, whose
member ``lead`` holds no standing grant and an approval limit of 10,000.00 on every definition.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from console.navigation import items_for
from demo.scopes import ESCALATION_TEAM, install_demo_scopes
from journeys import rights
from journeys.access import user_may
from journeys.models import ApprovalLimit, Event, Journey, JourneyDefinition, ProposedAction
from journeys.rights import Right
from review.models import ApprovalRequest, PermissionScope
from review.services import DecisionError, proposal_approve, proposal_reject, proposals_expire

from .helpers import refund, start

S = ProposedAction.Status
TWO_APPROVERS = "Refunds over 500.00 up to 5,000.00 need two approvers"


@pytest.fixture
def lead(demo):
    return get_user_model().objects.get(username="lead")


@pytest.fixture
def dispute(demo):
    return start("card_dispute", customer="CUST-00008")


def _expire_now(proposal: ProposedAction) -> None:
    ProposedAction.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def _escalate(proposal: ProposedAction) -> None:
    _expire_now(proposal)
    assert proposals_expire() == {"escalated": 1, "fallback": 0}


def _reload(proposal: ProposedAction) -> ProposedAction:
    return ProposedAction.objects.get(pk=proposal.pk)


def _queue_ids(client, user) -> list[int]:
    client.force_login(user)
    response = client.get(reverse("review_queue"))
    if response.status_code == 404:  # the queue is not in this person's menu at all
        return []
    assert response.status_code == 200
    return [row["proposal"].pk for row in response.context["rows"]]


def _desk_limit(definition_key: str, amount: str | None) -> None:
    desk = Group.objects.get(name=ESCALATION_TEAM)
    definition = JourneyDefinition.objects.get(key=definition_key)
    if amount is None:
        ApprovalLimit.objects.filter(team=desk, definition=definition).delete()
    else:
        ApprovalLimit.objects.update_or_create(team=desk, definition=definition, defaults={"limit": Decimal(amount)})


def test_the_demo_desk_holds_no_standing_grant_but_a_limit_everywhere(lead):
    for definition in JourneyDefinition.objects.all():
        for right in rights.OBJECT_RIGHTS:
            assert not user_may(lead, right, definition)
        assert ApprovalLimit.objects.get(team__name=ESCALATION_TEAM, definition=definition).limit == Decimal("10000.00")
    assert PermissionScope.objects.get(name=TWO_APPROVERS).escalate_to.name == ESCALATION_TEAM


def test_an_escalated_item_reaches_the_target_teams_queue_only_after_escalation(client, dispute, agent, lead):
    pending = refund(dispute, "800.00", agent=agent)
    assert _queue_ids(client, lead) == []
    assert client.post(reverse("review_approve", args=[pending.pk])).status_code == 404
    assert client.get(reverse("review_edit", args=[pending.pk])).status_code == 404
    _escalate(pending)
    assert _queue_ids(client, lead) == [pending.pk]
    row = client.get(reverse("review_queue")).context["rows"][0]
    assert row["delegated"] is True and row["escalated"] is True
    assert row["limit"] == Decimal("10000.00") and row["over_limit"] is False
    assert row["may_open"] is False  # the journey page stays closed; the queue carries the context
    page = client.get(reverse("review_queue")).content.decode()
    assert reverse("journey_detail", args=[dispute.pk]) not in page
    assert "Delegated to your team for this item only" in page
    assert "Approvals" in [item.label for item in items_for(lead)]


def test_the_target_team_approves_within_its_limit_and_the_decision_says_escalation(
    client, dispute, agent, lead, supervisor
):
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    client.force_login(lead)
    response = client.post(reverse("review_approve", args=[pending.pk]), {"reason": "Checked the statement"})
    assert response.status_code == 302
    approval = pending.approvals.get()
    assert approval.approver == lead
    event = _reload(pending).events.get(kind=Event.Kind.ACTION_APPROVED)
    assert event.data["under_escalation"] is True
    assert event.data["escalated_to"] == ESCALATION_TEAM
    assert event.data["delegated"] is True
    assert "under escalation to Escalations desk" in event.summary
    # The second of two approvals, by a standing approver, completes it; one rule, four eyes.
    result = proposal_approve(proposal_id=pending.pk, user=supervisor)
    assert result.outcome == "approved"
    last = _reload(pending).events.filter(kind=Event.Kind.ACTION_APPROVED).latest("pk")
    assert last.data["under_escalation"] is True and last.data["delegated"] is False


def test_the_target_team_is_refused_above_its_limit_and_may_edit_down_to_it(client, dispute, agent, lead):
    _desk_limit("card_dispute", "700.00")
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    with pytest.raises(DecisionError, match=r"above Escalations desk.s approval limit of 700\.00"):
        proposal_approve(proposal_id=pending.pk, user=lead)
    client.force_login(lead)
    assert client.get(reverse("review_queue")).context["rows"][0]["over_limit"] is True
    client.post(reverse("review_approve", args=[pending.pk]))
    assert not pending.approvals.exists()
    assert _reload(pending).status == S.PENDING
    params = {**pending.params, "amount": "650.00"}
    response = client.post(
        reverse("review_edit", args=[pending.pk]), {**params, "edit_reason": "Only the fee is refundable"}
    )
    assert response.status_code == 302, response.content.decode()
    assert _reload(pending).params["amount"] == "650.00"
    assert pending.approvals.get(dropped_at__isnull=True).approver == lead


def test_a_target_team_without_a_limit_may_only_reject_an_amount(dispute, agent, lead):
    _desk_limit("card_dispute", None)
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    with pytest.raises(DecisionError, match=r"approval limit of 0\.00"):
        proposal_approve(proposal_id=pending.pk, user=lead)
    result = proposal_reject(proposal_id=pending.pk, user=lead, reason="Not without the statement")
    assert result.outcome == "rejected"
    event = _reload(pending).events.get(kind=Event.Kind.ACTION_REJECTED)
    assert event.data["under_escalation"] is True and event.data["delegated"] is True


def test_members_of_an_unrelated_team_still_get_404(client, dispute, agent, supervisor2, outsider):
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    for user in (supervisor2, outsider):
        assert pending.pk not in _queue_ids(client, user)
        assert client.post(reverse("review_approve", args=[pending.pk])).status_code == 404
        assert client.post(reverse("review_reject", args=[pending.pk]), {"reason": "No"}).status_code == 404
        assert client.get(reverse("review_edit", args=[pending.pk])).status_code == 404
        with pytest.raises(DecisionError, match="may not"):
            proposal_approve(proposal_id=pending.pk, user=user)
    assert not pending.approvals.exists()


def test_original_approvers_still_see_and_decide_an_escalated_item(client, dispute, agent, supervisor):
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    assert _queue_ids(client, supervisor)[0] == pending.pk
    response = client.post(reverse("review_reject", args=[pending.pk]), {"reason": "Duplicate claim"})
    assert response.status_code == 302
    assert _reload(pending).status == S.REJECTED
    event = _reload(pending).events.get(kind=Event.Kind.ACTION_REJECTED)
    assert event.data["under_escalation"] is True and event.data["delegated"] is False


def test_the_delegate_cannot_open_the_journey_or_its_definitions_other_items(client, dispute, agent, lead):
    pending = refund(dispute, "800.00", agent=agent)
    other_journey = start("card_dispute", customer="CUST-00009")
    other = refund(other_journey, "900.00", agent=agent)  # same definition, not escalated
    _escalate(pending)
    assert ApprovalRequest.objects.get(proposal=other).escalated_at is None
    client.force_login(lead)
    assert client.get(reverse("journey_detail", args=[dispute.pk])).status_code == 404
    assert client.get(reverse("journey_detail", args=[other_journey.pk])).status_code == 404
    assert client.post(reverse("review_approve", args=[other.pk])).status_code == 404
    assert _queue_ids(client, lead) == [pending.pk]
    response = client.post(reverse("review_batch"), {"ids": [pending.pk, other.pk], "decision": "approve"})
    assert response.status_code == 302
    assert pending.approvals.get().approver == lead
    assert not other.approvals.exists()


def test_one_person_approves_an_escalated_item_once(dispute, agent, lead):
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    assert proposal_approve(proposal_id=pending.pk, user=lead).outcome == "partial"
    with pytest.raises(DecisionError, match="already approved"):
        proposal_approve(proposal_id=pending.pk, user=lead)


def test_a_delegate_cannot_approve_their_own_proposal(demo, lead):
    journey = start("fee_refund", customer="CUST-00007")
    pending = refund(journey, "800.00", user=lead)  # a person's proposal: the same rules apply
    _escalate(pending)
    with pytest.raises(DecisionError, match="four-eyes"):
        proposal_approve(proposal_id=pending.pk, user=lead)


def test_expiry_after_the_escalation_window_falls_back_to_a_person(client, dispute, agent, lead):
    pending = refund(dispute, "800.00", agent=agent)
    _escalate(pending)
    assert _queue_ids(client, lead) == [pending.pk]
    _expire_now(pending)
    assert proposals_expire() == {"escalated": 0, "fallback": 1}
    assert _reload(pending).status == S.EXPIRED
    assert Journey.objects.get(pk=dispute.pk).status == Journey.Status.HUMAN
    # The delegation ended with the item.
    assert _queue_ids(client, lead) == []
    assert client.post(reverse("review_approve", args=[pending.pk])).status_code == 404


def test_without_a_named_team_the_owning_team_receives_the_escalation(dispute, agent):
    scope = PermissionScope.objects.get(name=TWO_APPROVERS)
    PermissionScope.objects.filter(pk=scope.pk).update(escalate_to=None)
    pending = refund(dispute, "800.00", agent=agent)
    owner = dispute.definition.owning_team
    assert owner is not None
    assert ApprovalRequest.objects.get(proposal=pending).escalate_to == owner
    # A team deleted after the proposal: the owning team still receives it.
    ApprovalRequest.objects.filter(proposal=pending).update(escalate_to=None)
    _escalate(pending)
    assert ApprovalRequest.objects.get(proposal=pending).escalate_to == owner
    assert _reload(pending).events.get(kind=Event.Kind.ACTION_EXPIRED).data == {
        "outcome": "escalated",
        "to": owner.name,
    }


def test_installing_the_demo_scopes_names_the_desk_once_and_respects_edits(demo):
    scope = PermissionScope.objects.get(name=TWO_APPROVERS)
    PermissionScope.objects.filter(pk=scope.pk).update(escalate_to=None)
    assert install_demo_scopes() == 0
    assert PermissionScope.objects.get(pk=scope.pk).escalate_to.name == ESCALATION_TEAM
    assert install_demo_scopes() == 0
    assert Group.objects.filter(name=ESCALATION_TEAM).count() == 1


def test_the_scope_editor_accepts_a_team_with_only_an_approval_limit(client, admin_user, admin2):
    from journeys.models import ActionType
    from review.models import GovernanceChange
    from review.services.governance import governance_approve

    from .test_views import _scope_post

    data = _scope_post(
        name="Fee refunds escalate to the desk",
        on_timeout="escalate",
        escalate_to=Group.objects.get(name=ESCALATION_TEAM).pk,
        definition=JourneyDefinition.objects.get(key="fee_refund").pk,
        action_type=ActionType.objects.get(key="issue_refund").pk,
    )
    client.force_login(admin_user)
    assert client.post(reverse("review_scope_create"), data).status_code == 302
    governance_approve(change_id=GovernanceChange.objects.get(status="pending").pk, user=admin2)
    assert PermissionScope.objects.get(name="Fee refunds escalate to the desk").escalate_to.name == ESCALATION_TEAM


def test_seeding_the_demo_again_keeps_one_desk_one_lead_and_no_grants(lead):
    import os

    from django.conf import settings
    from django.core.management import call_command

    from journeys.models import DefinitionGroupPermission

    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", customers=12, stdout=quiet)
    desk = Group.objects.get(name=ESCALATION_TEAM)
    assert list(desk.user_set.values_list("username", flat=True)) == ["lead"]
    assert not DefinitionGroupPermission.objects.filter(group=desk).exists()
    assert ApprovalLimit.objects.filter(team=desk).count() == JourneyDefinition.objects.count()
    assert all(not user_may(lead, Right.APPROVE, d) for d in JourneyDefinition.objects.all())
    assert get_user_model().objects.get(username="lead").check_password(settings.DEMO_PASSWORD)


def test_the_desk_sees_what_the_decision_rests_on_without_the_journey(client, dispute, agent, lead, supervisor):
    facts = {
        "card": "tok_card_00008",
        "account": "ACC-000008",
        "transaction": {"id": 4711, "at": "2026-11-20T10:00:00", "description": "Skyline Air", "amount": "242.88"},
        "address": "9 Mill Road, Springfield SP9 1AB",
    }
    context = {**dispute.context, "request": {"merchant": "Skyline Air", "amount": "242.88"}, "facts": facts}
    Journey.objects.filter(pk=dispute.pk).update(context=context)
    pending = refund(dispute, "675.24", agent=agent)
    proposal_approve(proposal_id=pending.pk, user=supervisor, reason="Looks right to me")  # 1 of 2
    _escalate(pending)

    client.force_login(lead)
    body = client.get(reverse("review_queue")).content.decode()
    item = body.split(f'id="brief-{pending.pk}"')[1].split("</dl>")[0]
    # The request, the transaction the agent picked and its amount, next to the proposed amount.
    assert "Skyline Air" in item and "242.88" in item and "4711" in item
    assert "675.24" in item
    assert "Test proposal." in item  # the agent's explanation
    assert "Looks right to me" in item and "supervisor" in item  # the earlier approval
    assert "Approval expired" in item  # the escalation itself
    # Read-only and masked: no address, no card token; the journey page stays closed.
    assert "9 Mill Road" not in body and "tok_card_00008" not in body
    assert client.get(reverse("journey_detail", args=[dispute.pk])).status_code == 404
    # The same brief on Edit & approve.
    edit = client.get(reverse("review_edit", args=[pending.pk])).content.decode()
    assert "Skyline Air" in edit and "242.88" in edit
