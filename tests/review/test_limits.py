"""Cumulative limits over a window, counted atomically in PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from journeys.models import ProposedAction
from review.models import CumulativeLimit, LimitCounter, LimitUsage
from review.services import proposal_approve

from .helpers import propose, refund, start

S = ProposedAction.Status
PER_CUSTOMER = "Refunds per customer: 300.00 per 30 days without approval"


@pytest.fixture
def journey(demo):
    return start("card_dispute", customer="CUST-00002")


def test_refunds_over_the_customers_window_budget_need_approval(journey, agent):
    first = refund(journey, "30.00", agent=agent)
    # Small refunds are automatic until the customer's 30-day total would pass 300.00.
    for _ in range(8):
        assert refund(journey, "30.00", agent=agent).status == S.AUTO_APPROVED
    tenth = refund(journey, "30.00", agent=agent)
    over = refund(journey, "30.00", agent=agent)
    assert first.status == tenth.status == S.AUTO_APPROVED
    assert over.status == S.PENDING
    assert over.decision_rule == PER_CUSTOMER
    assert over.decision_explanation == (
        f"Issue refund of 30.00 needs approval: limit '{PER_CUSTOMER}' allows at most 300.00 per customer per "
        "30 days and 300.00 is already used for customer CUST-00002."
    )


def test_the_limit_counts_per_customer_across_definitions(demo, agent):
    dispute = start("card_dispute", customer="CUST-00003")
    fees = start("fee_refund", customer="CUST-00003")
    other = start("fee_refund", customer="CUST-00004")
    for _ in range(10):
        refund(dispute, "30.00", agent=agent)
    assert refund(fees, "10.00", agent=agent).status == S.PENDING
    assert refund(other, "10.00", agent=agent).status == S.AUTO_APPROVED


def test_a_proposal_locks_each_counter_once_per_transaction(journey, agent):
    """The judgement locks the counters it reads and counting the allowed proposal reuses those
    locks in the same transaction; a later transaction (or a savepoint that rolled back) locks
    again."""
    from django.test.utils import CaptureQueriesContext

    from review.policy import _lock_counter

    with CaptureQueriesContext(connection) as captured:
        allowed = refund(journey, "30.00", agent=agent)
    assert allowed.status == S.AUTO_APPROVED
    locks = [
        q for q in captured.captured_queries if 'FROM "review_limitcounter"' in q["sql"] and "FOR UPDATE" in q["sql"]
    ]
    counted = LimitUsage.objects.filter(proposal=allowed).count()  # one per limit that applies
    assert counted and len(locks) == counted

    limit = LimitUsage.objects.filter(proposal=allowed).first().counter.limit
    with transaction.atomic():
        held = _lock_counter(limit, "customer:CUST-00002", allowed)
        with CaptureQueriesContext(connection) as reused:
            assert _lock_counter(limit, "customer:CUST-00002", allowed) is held
        assert not reused.captured_queries
        try:
            with transaction.atomic():
                _lock_counter(limit, "customer:CUST-00009", allowed)
                raise RuntimeError("roll the savepoint back, and its lock with it")
        except RuntimeError:
            pass
        with CaptureQueriesContext(connection) as relocked:
            _lock_counter(limit, "customer:CUST-00009", allowed)
        assert any("FOR UPDATE" in q["sql"] for q in relocked.captured_queries)


def test_usage_older_than_the_window_no_longer_counts(journey, agent):
    for _ in range(10):
        refund(journey, "30.00", agent=agent)
    LimitUsage.objects.update(at=timezone.now() - timedelta(days=31))
    assert refund(journey, "30.00", agent=agent).status == S.AUTO_APPROVED


def test_an_approved_refund_counts_against_the_budget(journey, agent, supervisor):
    pending = refund(journey, "250.00", agent=agent)
    assert pending.status == S.PENDING
    proposal_approve(proposal_id=pending.pk, user=supervisor)
    assert refund(journey, "30.00", agent=agent).decision_rule == "Refunds up to 35.00 are automatic"
    assert refund(journey, "30.00", agent=agent).decision_rule == PER_CUSTOMER  # 250 + 30 + 30 > 300


def test_pending_rejected_or_denied_refunds_use_no_budget(journey, agent):
    refund(journey, "450.00", agent=agent)
    refund(journey, "9000.00", agent=agent)
    assert not LimitUsage.objects.exists()


def test_card_blocks_per_agent_per_hour(demo, agent, supervisor):
    CumulativeLimit.objects.filter(name="Card blocks per agent: 200 an hour").update(maximum=2)
    journeys = [start("lost_card", customer=f"CUST-0000{n}") for n in (1, 2, 3)]
    results = [
        propose(j, "block_card", {"card": f"tok_card_0000{n}", "reason": "lost"}, agent=agent).status
        for n, j in enumerate(journeys, start=1)
    ]
    assert results == [S.AUTO_APPROVED, S.AUTO_APPROVED, S.PENDING]
    # A person's blocks are counted for that person, not for the agent.
    assert (
        propose(journeys[0], "block_card", {"card": "tok_card_00001", "reason": "lost"}, user=supervisor).status
        == S.AUTO_APPROVED
    )


def test_fee_refunds_beyond_three_a_year_are_denied(demo, agent):
    journey = start("fee_refund", customer="CUST-00005")
    statuses = [refund(journey, "5.00", agent=agent).status for _ in range(4)]
    assert statuses == [S.AUTO_APPROVED] * 3 + [S.DENIED]


@pytest.mark.django_db(transaction=True)
def test_concurrent_proposals_for_one_customer_cannot_both_use_the_last_of_the_budget(demo, agent, monkeypatch):
    """Two journeys of the same customer propose 30.00 against a 50.00 budget at nearly the same moment, each in its
    own transaction on its own connection under its own journey lock. The first holds its
    transaction open after counting; the second must wait for the counter lock and then sees
    the first's usage, so exactly one goes through without approval."""
    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)  # no worker here
    CumulativeLimit.objects.filter(name=PER_CUSTOMER).update(maximum=50)
    # The customer's counter exists already (an earlier refund), so the row lock does the work.
    LimitCounter.objects.create(limit=CumulativeLimit.objects.get(name=PER_CUSTOMER), subject_key="customer:CUST-00006")
    journeys = [start("card_dispute", customer="CUST-00006"), start("fee_refund", customer="CUST-00006")]
    first_counted = threading.Event()
    statuses: dict[str, str] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                statuses["first"] = refund(journeys[0], "30.00", agent=agent).status
                first_counted.set()
                time.sleep(0.5)  # still uncommitted: without the lock the second would not see it
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_counted.set()
            connection.close()

    def second() -> None:
        try:
            first_counted.wait(timeout=10)
            statuses["second"] = refund(journeys[1], "30.00", agent=agent).status
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert statuses == {"first": S.AUTO_APPROVED, "second": S.PENDING}
    assert LimitUsage.objects.count() == 1
