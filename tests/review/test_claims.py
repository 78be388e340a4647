"""Claiming an approval for review: one reader at a time, released by hand or by a decision,
lapsing on its own; two people claiming at once have one winner."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from journeys.models import Event, ProposedAction
from review.models import AuditRecord
from review.services import (
    DecisionError,
    proposal_approve,
    proposal_claim,
    proposal_reject,
    proposal_release_claim,
)

from .helpers import refund, start


@pytest.fixture
def dispute(demo):
    return start("card_dispute", customer="CUST-00008")


@pytest.fixture
def carla(demo):
    user = get_user_model().objects.create_user("carla", password="demo")
    user.groups.add(Group.objects.get(name="Cards team"))
    return user


def _reload(proposal: ProposedAction) -> ProposedAction:
    return ProposedAction.objects.select_related("claimed_by").get(pk=proposal.pk)


def test_a_claim_shows_who_reviews_and_keeps_others_from_deciding(dispute, agent, supervisor, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_claim(proposal_id=pending.pk, user=carla)
    assert _reload(pending).claim_holder() == carla
    with pytest.raises(DecisionError, match="carla is already reviewing"):
        proposal_claim(proposal_id=pending.pk, user=supervisor)
    with pytest.raises(DecisionError, match="carla is reviewing"):
        proposal_approve(proposal_id=pending.pk, user=supervisor)
    with pytest.raises(DecisionError, match="carla is reviewing"):
        proposal_reject(proposal_id=pending.pk, user=supervisor, reason="No")
    assert _reload(pending).status == ProposedAction.Status.PENDING


def test_a_decision_clears_the_claim(dispute, agent, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_claim(proposal_id=pending.pk, user=carla)
    proposal_approve(proposal_id=pending.pk, user=carla, reason="Fine")
    decided = _reload(pending)
    assert decided.status == ProposedAction.Status.APPROVED
    assert decided.claimed_by is None and decided.claimed_until is None


def test_releasing_gives_the_item_back_and_only_the_holder_releases(dispute, agent, supervisor, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_claim(proposal_id=pending.pk, user=carla)
    with pytest.raises(DecisionError, match="no claim of yours"):
        proposal_release_claim(proposal_id=pending.pk, user=supervisor)
    proposal_release_claim(proposal_id=pending.pk, user=carla)
    assert _reload(pending).claimed_by is None
    proposal_claim(proposal_id=pending.pk, user=supervisor)
    assert _reload(pending).claim_holder() == supervisor


def test_a_lapsed_claim_no_longer_holds_the_item(dispute, agent, supervisor, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_claim(proposal_id=pending.pk, user=carla)
    ProposedAction.objects.filter(pk=pending.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert _reload(pending).claim_holder() is None
    proposal_claim(proposal_id=pending.pk, user=supervisor)
    assert _reload(pending).claim_holder() == supervisor


def test_claims_and_releases_are_on_the_timeline_and_in_the_audit_trail(dispute, agent, supervisor, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_claim(proposal_id=pending.pk, user=carla)
    proposal_claim(proposal_id=pending.pk, user=carla)  # claiming again renews it
    proposal_release_claim(proposal_id=pending.pk, user=carla)
    proposal_claim(proposal_id=pending.pk, user=carla)
    ProposedAction.objects.filter(pk=pending.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    proposal_claim(proposal_id=pending.pk, user=supervisor)  # over carla's lapsed claim
    K = Event.Kind
    trail = list(Event.objects.filter(proposal=pending, kind__in=[K.ACTION_CLAIMED, K.CLAIM_RELEASED]).order_by("pk"))
    assert [(e.kind, e.actor_user.username) for e in trail] == [
        (K.ACTION_CLAIMED, "carla"),
        (K.ACTION_CLAIMED, "carla"),
        (K.CLAIM_RELEASED, "carla"),
        (K.ACTION_CLAIMED, "carla"),
        (K.ACTION_CLAIMED, "supervisor"),
    ]
    assert all(e.actor_kind == Event.Actor.PERSON and e.journey_id == dispute.pk for e in trail)
    assert trail[0].summary == "carla claimed Issue refund for review (10 min)."
    assert trail[1].data["renewed"] is True and "renewed the claim" in trail[1].summary
    assert trail[2].summary == "carla released Issue refund back to the approval queue."
    assert trail[4].data["lapsed_claim_of"] == "carla" and "carla's claim had lapsed" in trail[4].summary
    records = AuditRecord.objects.filter(event_id__in=[e.pk for e in trail]).order_by("seq")
    assert [(r.kind, r.actor_label, r.proposal_id) for r in records] == [
        (e.kind, e.actor_user.username, pending.pk) for e in trail
    ]


def test_a_refused_claim_or_release_writes_nothing(dispute, agent, supervisor, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_claim(proposal_id=pending.pk, user=carla)
    with pytest.raises(DecisionError):
        proposal_claim(proposal_id=pending.pk, user=supervisor)
    with pytest.raises(DecisionError):
        proposal_release_claim(proposal_id=pending.pk, user=supervisor)
    kinds = [Event.Kind.ACTION_CLAIMED, Event.Kind.CLAIM_RELEASED]
    assert Event.objects.filter(proposal=pending, kind__in=kinds).count() == 1


def test_people_who_may_not_decide_cannot_claim(dispute, agent, compliance, supervisor2):
    pending = refund(dispute, "120.00", agent=agent)
    for user in (compliance, supervisor2):
        with pytest.raises(DecisionError, match="may not decide"):
            proposal_claim(proposal_id=pending.pk, user=user)


def test_the_database_refuses_a_claim_on_a_decided_proposal(dispute, agent, carla):
    pending = refund(dispute, "120.00", agent=agent)
    proposal_approve(proposal_id=pending.pk, user=carla, reason="Fine")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProposedAction.objects.filter(pk=pending.pk).update(claimed_by=carla, claimed_until=timezone.now())


def test_the_queue_shows_who_reviews_an_item_and_hides_their_buttons(client, dispute, agent, supervisor, carla):
    pending = refund(dispute, "120.00", agent=agent)
    client.force_login(carla)
    client.post(reverse("review_claim", args=[pending.pk]))
    mine = client.get(reverse("review_queue")).content.decode()
    assert "You are reviewing this" in mine
    client.force_login(supervisor)
    theirs = client.get(reverse("review_queue")).content.decode()
    assert "Being reviewed by carla" in theirs
    assert f'action="{reverse("review_approve", args=[pending.pk])}"' not in theirs
    refused = client.post(reverse("review_approve", args=[pending.pk]), follow=True).content.decode()
    assert "carla is reviewing" in refused
    client.force_login(carla)
    client.post(reverse("review_release_claim", args=[pending.pk]))
    assert _reload(pending).claimed_by is None


@pytest.mark.parametrize("attempt", range(3))
def test_two_supervisors_claiming_at_once_have_one_winner(transactional_db, dispute, agent, supervisor, carla, attempt):
    pending = refund(dispute, "120.00", agent=agent)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def run(user):
        try:
            barrier.wait(timeout=5)
            proposal_claim(proposal_id=pending.pk, user=user)
            outcomes[user.username] = "won"
        except DecisionError as exc:
            outcomes[user.username] = str(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in (supervisor, carla)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1
    loser = ({"supervisor", "carla"} - set(winners)).pop()
    assert outcomes[loser].startswith(f"{winners[0]} is already reviewing")
    assert _reload(pending).claimed_by.username == winners[0]
