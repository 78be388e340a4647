"""Deciding pending actions: approve, reject, edit & approve, four-eyes, limits, batches, expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from journeys.models import ActionType, Event, Journey, ProposedAction
from review.models import Approval, ApprovalRequest, PermissionScope
from review.models.scopes import OnTimeout
from review.services import (
    DecisionError,
    proposal_approve,
    proposal_edit_approve,
    proposal_reject,
    proposals_decide_batch,
    proposals_expire,
)

from .helpers import refund, start

S = ProposedAction.Status


@pytest.fixture
def fee_journey(demo):
    return start("fee_refund", customer="CUST-00007")


@pytest.fixture
def dispute(demo):
    return start("card_dispute", customer="CUST-00008")


@pytest.fixture
def cards_colleague(demo):
    """A second member of the Cards team, for two-approver rules."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("carla", password="demo")
    user.groups.add(Group.objects.get(name="Cards team"))
    return user


def _reload(proposal: ProposedAction) -> ProposedAction:
    return ProposedAction.objects.get(pk=proposal.pk)


def test_approving_moves_the_action_to_approved_and_wakes_the_journey(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    result = proposal_approve(proposal_id=pending.pk, user=supervisor, reason="Looks right")
    proposal = _reload(pending)
    assert result.outcome == "approved"
    assert proposal.status == S.APPROVED
    assert proposal.decided_by == supervisor
    assert proposal.decided_at is not None
    assert proposal.decision_reason == "Looks right"
    event = proposal.events.get(kind=Event.Kind.ACTION_APPROVED)
    assert event.actor_user == supervisor
    assert event.data == {
        "approver": "supervisor",
        "partial": False,
        "edited": False,
        "before": proposal.params,
        "after": proposal.params,
    }
    journey = Journey.objects.get(pk=dispute.pk)
    assert journey.status == Journey.Status.RUNNING
    assert journey.waiting_on == Journey.WaitingOn.NOTHING


def test_rejection_needs_a_reason(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    with pytest.raises(DecisionError, match="needs a reason"):
        proposal_reject(proposal_id=pending.pk, user=supervisor, reason="   ")
    assert _reload(pending).status == S.PENDING


def test_rejection_reason_reaches_the_agents_context_and_the_journey_wakes(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_reject(proposal_id=pending.pk, user=supervisor, reason="Customer already got a goodwill credit")
    proposal = _reload(pending)
    assert proposal.status == S.REJECTED
    assert proposal.decided_by == supervisor
    assert proposal.events.get(kind=Event.Kind.ACTION_REJECTED).data == {
        "reason": "Customer already got a goodwill credit"
    }
    journey = Journey.objects.get(pk=dispute.pk)
    assert journey.status == Journey.Status.RUNNING
    assert journey.context["results"]["issue_refund"] == {
        "proposal": proposal.pk,
        "status": "rejected",
        "reason": "Customer already got a goodwill credit",
    }
    assert "Customer already got a goodwill credit" in journey.context["guidance"][-1]


def test_the_proposer_never_approves_their_own_action(dispute, supervisor, cards_colleague):
    own = refund(dispute, "120.00", user=supervisor)
    with pytest.raises(DecisionError, match="four-eyes"):
        proposal_approve(proposal_id=own.pk, user=supervisor)
    assert _reload(own).status == S.PENDING
    proposal_approve(proposal_id=own.pk, user=cards_colleague)
    assert _reload(own).status == S.APPROVED


def test_an_agents_service_user_counts_as_the_proposer(dispute, agent):
    from guardian.shortcuts import assign_perm

    pending = refund(dispute, "120.00", agent=agent)
    assign_perm("journeys.approve_actions", agent.user, dispute.definition)
    with pytest.raises(DecisionError, match="four-eyes"):
        proposal_approve(proposal_id=pending.pk, user=agent.user)


def test_the_database_refuses_an_approval_by_the_proposer_even_through_the_orm(dispute, supervisor):
    own = refund(dispute, "120.00", user=supervisor)
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(proposal=own, approver=supervisor, proposer_user=supervisor)


def test_the_database_derives_the_proposer_so_naming_none_does_not_help(dispute, agent, supervisor):
    own = refund(dispute, "120.00", user=supervisor)
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(proposal=own, approver=supervisor, proposer_user=None)
    agents = refund(dispute, "130.00", agent=agent)
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(proposal=agents, approver=agent.user, proposer_user=supervisor)
    assert not Approval.objects.exists()


def test_the_database_refuses_a_second_approval_by_the_same_person(dispute, agent, supervisor):
    pending = refund(dispute, "800.00", agent=agent)
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(proposal=pending, approver=supervisor, proposer_user=agent.user)


def test_two_approvals_need_two_different_people_and_the_first_shows_as_partial(
    dispute, agent, supervisor, cards_colleague
):
    pending = refund(dispute, "800.00", agent=agent)
    assert pending.required_approvals == 2
    first = proposal_approve(proposal_id=pending.pk, user=supervisor)
    assert first.outcome == "partial"
    assert _reload(pending).status == S.PENDING
    assert pending.events.get(kind=Event.Kind.ACTION_APPROVED).data["partial"] is True
    with pytest.raises(DecisionError, match="second, different person"):
        proposal_approve(proposal_id=pending.pk, user=supervisor)
    second = proposal_approve(proposal_id=pending.pk, user=cards_colleague)
    assert second.outcome == "approved"
    proposal = _reload(pending)
    assert proposal.status == S.APPROVED
    assert proposal.decided_by == cards_colleague
    assert [e.data["partial"] for e in proposal.events.filter(kind=Event.Kind.ACTION_APPROVED).order_by("id")] == [
        True,
        False,
    ]


def test_editing_drops_earlier_approvals(dispute, agent, supervisor, cards_colleague):
    pending = refund(dispute, "900.00", agent=agent)
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    result = proposal_edit_approve(
        proposal_id=pending.pk,
        user=cards_colleague,
        params={**pending.params, "amount": "700.00"},
        reason="Only the disputed part",
    )
    assert result.outcome == "partial"  # 700.00 still needs two people; supervisor's approval was for 900.00
    proposal = _reload(pending)
    assert proposal.params["amount"] == "700.00"
    assert proposal.approvals.filter(dropped_at__isnull=True).get().approver == cards_colleague
    assert proposal.approvals.get(approver=supervisor).dropped_at is not None
    edited = proposal.events.filter(kind=Event.Kind.ACTION_APPROVED).latest("id")
    assert edited.data["edited"] is True
    assert edited.data["before"]["amount"] == "900.00"
    assert edited.data["after"]["amount"] == "700.00"
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    assert _reload(pending).status == S.APPROVED


def test_an_edit_is_rechecked_by_the_policy_engine(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    with pytest.raises(DecisionError, match="current rules deny"):
        proposal_edit_approve(
            proposal_id=pending.pk, user=supervisor, params={**pending.params, "amount": "9000.00"}, reason="More"
        )
    proposal = _reload(pending)
    assert proposal.status == S.PENDING
    assert proposal.params["amount"] == "120.00"
    result = proposal_edit_approve(
        proposal_id=pending.pk,
        user=supervisor,
        params={**pending.params, "amount": "30.00"},
        reason="Only the fee part",
    )
    proposal = _reload(pending)
    assert result.outcome == "approved"
    assert proposal.params["amount"] == "30.00"
    assert proposal.decision_rule == "Refunds up to 35.00 are automatic"


def test_an_edit_needs_a_reason_and_valid_parameters(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    with pytest.raises(DecisionError, match="needs a reason"):
        proposal_edit_approve(proposal_id=pending.pk, user=supervisor, params=pending.params, reason="")
    with pytest.raises(DecisionError, match="amount"):
        proposal_edit_approve(
            proposal_id=pending.pk, user=supervisor, params={**pending.params, "amount": "ten"}, reason="typo"
        )
    with pytest.raises(DecisionError, match="Nothing was changed"):
        proposal_edit_approve(proposal_id=pending.pk, user=supervisor, params=pending.params, reason="same")


def test_an_amount_exactly_at_the_approvers_limit_is_allowed_one_cent_above_is_not(fee_journey, agent, supervisor2):
    # Servicing team may approve up to 500.00 on fee refunds.
    at_limit = refund(fee_journey, "500.00", agent=agent)
    proposal_approve(proposal_id=at_limit.pk, user=supervisor2)
    assert _reload(at_limit).status == S.APPROVED
    above = refund(fee_journey, "500.01", agent=agent)
    with pytest.raises(DecisionError, match=r"above your approval limit of 500\.00"):
        proposal_approve(proposal_id=above.pk, user=supervisor2)
    assert _reload(above).status == S.PENDING
    assert not above.approvals.exists()


def test_the_limit_is_read_at_decision_time(dispute, agent, supervisor):
    from journeys.models import ApprovalLimit

    pending = refund(dispute, "400.00", agent=agent)
    ApprovalLimit.objects.filter(definition=dispute.definition).update(limit="300.00")
    with pytest.raises(DecisionError, match=r"approval limit of 300\.00"):
        proposal_approve(proposal_id=pending.pk, user=supervisor)


def test_the_rule_is_evaluated_at_decision_time(dispute, agent, supervisor):
    pending = refund(dispute, "120.00", agent=agent)
    PermissionScope.objects.create(
        name="Disputes: no refunds while we investigate",
        effect="deny",
        action_type=ActionType.objects.get(key="issue_refund"),
        definition=dispute.definition,
    )
    with pytest.raises(DecisionError, match="no refunds while we investigate"):
        proposal_approve(proposal_id=pending.pk, user=supervisor)
    assert _reload(pending).status == S.PENDING


def test_a_user_of_another_team_may_not_decide(dispute, agent, supervisor2):
    pending = refund(dispute, "120.00", agent=agent)
    with pytest.raises(DecisionError, match="may not"):
        proposal_approve(proposal_id=pending.pk, user=supervisor2)
    with pytest.raises(DecisionError, match="may not"):
        proposal_reject(proposal_id=pending.pk, user=supervisor2, reason="no")


def test_a_decided_action_cannot_be_decided_again(dispute, agent, supervisor, cards_colleague):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_reject(proposal_id=pending.pk, user=supervisor, reason="Duplicate")
    with pytest.raises(DecisionError, match="already rejected by supervisor"):
        proposal_approve(proposal_id=pending.pk, user=cards_colleague)


def test_batch_decisions_check_each_item_and_say_which_went_through(dispute, agent, supervisor):
    ok = refund(dispute, "100.00", agent=agent)
    own = refund(dispute, "110.00", user=supervisor)
    too_big = refund(dispute, "1200.00", agent=agent)
    results = proposals_decide_batch(proposal_ids=[ok.pk, own.pk, too_big.pk], user=supervisor, decision="approve")
    assert [(r.proposal_id, r.ok) for r in results] == [(ok.pk, True), (own.pk, False), (too_big.pk, False)]
    assert "four-eyes" in results[1].message
    assert "approval limit" in results[2].message
    assert [_reload(p).status for p in (ok, own, too_big)] == [S.APPROVED, S.PENDING, S.PENDING]


def test_batch_rejection_needs_a_reason_and_rejects_each(dispute, agent, supervisor):
    items = [refund(dispute, "100.00", agent=agent), refund(dispute, "110.00", agent=agent)]
    with pytest.raises(DecisionError, match="needs a reason"):
        proposals_decide_batch(proposal_ids=[p.pk for p in items], user=supervisor, decision="reject")
    results = proposals_decide_batch(
        proposal_ids=[p.pk for p in items], user=supervisor, decision="reject", reason="Wrong account"
    )
    assert all(r.ok for r in results)
    assert {_reload(p).status for p in items} == {S.REJECTED}


# --- expiry ---------------------------------------------------------------------------------


def _expire_now(proposal: ProposedAction) -> None:
    ProposedAction.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_expiry_falls_back_to_a_person_and_is_never_a_rejection(dispute, agent):
    pending = refund(dispute, "120.00", agent=agent)
    _expire_now(pending)
    assert proposals_expire() == {"escalated": 0, "fallback": 1}
    proposal = _reload(pending)
    assert proposal.status == S.EXPIRED
    assert proposal.decided_by is None
    assert not proposal.events.filter(kind=Event.Kind.ACTION_REJECTED).exists()
    assert proposal.events.get(kind=Event.Kind.ACTION_EXPIRED).data == {"outcome": "fallback"}
    journey = Journey.objects.get(pk=dispute.pk)
    assert journey.status == Journey.Status.HUMAN
    assert "expired" in journey.needs_person_reason
    assert journey.context["results"]["issue_refund"]["status"] == "expired"
    assert proposals_expire() == {"escalated": 0, "fallback": 0}  # a second run finds nothing


def test_expiry_escalates_once_then_falls_back(dispute, agent):
    pending = refund(dispute, "800.00", agent=agent)  # demo: two approvers, escalate on timeout
    request = ApprovalRequest.objects.get(proposal=pending)
    assert request.on_timeout == OnTimeout.ESCALATE
    _expire_now(pending)
    assert proposals_expire() == {"escalated": 1, "fallback": 0}
    proposal = _reload(pending)
    assert proposal.status == S.PENDING
    assert proposal.expires_at > timezone.now() + timedelta(minutes=9)
    assert proposal.events.get(kind=Event.Kind.ACTION_EXPIRED).data == {
        "outcome": "escalated",
        "to": "Escalations desk",
    }
    _expire_now(pending)
    assert proposals_expire() == {"escalated": 0, "fallback": 1}
    assert _reload(pending).status == S.EXPIRED
    assert Journey.objects.get(pk=dispute.pk).status == Journey.Status.HUMAN


def test_an_action_not_yet_due_does_not_expire(dispute, agent):
    pending = refund(dispute, "120.00", agent=agent)
    assert proposals_expire() == {"escalated": 0, "fallback": 0}
    assert _reload(pending).status == S.PENDING


# --- the race -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_deciding_at_once_have_exactly_one_winner(demo, agent, supervisor, monkeypatch):
    from django.contrib.auth import get_user_model

    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)  # no worker here
    colleague = get_user_model().objects.create_user("carla", password="demo")
    colleague.groups.add(Group.objects.get(name="Cards team"))
    journey = start("card_dispute", customer="CUST-00009")
    pending = refund(journey, "120.00", agent=agent)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(name: str, action) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[name] = action().outcome
        except DecisionError as exc:
            outcomes[name] = f"refused: {exc}"
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=decide, args=("approve", lambda: proposal_approve(proposal_id=pending.pk, user=supervisor))
        ),
        threading.Thread(
            target=decide, args=("reject", lambda: proposal_reject(proposal_id=pending.pk, user=colleague, reason="No"))
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [name for name, outcome in outcomes.items() if not outcome.startswith("refused")]
    assert len(winners) == 1, outcomes
    loser = "reject" if winners == ["approve"] else "approve"
    assert "Nothing was changed" in outcomes[loser]
    proposal = _reload(pending)
    assert proposal.status == (S.APPROVED if winners == ["approve"] else S.REJECTED)
    decided = proposal.events.filter(kind__in=[Event.Kind.ACTION_APPROVED, Event.Kind.ACTION_REJECTED])
    assert decided.count() == 1
    assert proposal.approvals.count() == (1 if winners == ["approve"] else 0)


def test_the_beat_task_expires_due_approvals(dispute, agent):
    from review.tasks import expire_pending_approvals

    pending = refund(dispute, "120.00", agent=agent)
    _expire_now(pending)
    assert expire_pending_approvals() == {"escalated": 0, "fallback": 1}
    assert _reload(pending).status == S.EXPIRED


def test_escalated_items_come_first_in_the_queue(client, dispute, agent, supervisor):
    plain = refund(dispute, "120.00", agent=agent)
    urgent = refund(start("card_dispute", customer="CUST-00009"), "800.00", agent=agent)
    _expire_now(urgent)
    proposals_expire()
    client.force_login(supervisor)
    rows = client.get("/review/").context["rows"]
    assert [row["proposal"].pk for row in rows][:2] == [urgent.pk, plain.pk]
    assert rows[0]["escalated"] is True
