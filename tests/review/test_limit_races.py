"""Cumulative limits hold when people approve at the same instant.

Every decision path re-checks the limits under the same counter locks the runtime uses, so two
simultaneous approvals of the customer's last allowed fee refund cannot both go through.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from journeys.models import ProposedAction
from review.models import CumulativeLimit, LimitUsage
from review.services import DecisionError, proposal_approve, proposal_edit_approve

from .helpers import refund, start

FEE_REFUNDS = "Fee refunds per customer: at most 3 a year"
S = ProposedAction.Status


def _servicing_colleague():
    user = get_user_model().objects.create_user("sol", password="demo")
    user.groups.add(Group.objects.get(name="Servicing team"))
    return user


def _race(first, second) -> dict[str, str]:
    """Run both decisions at the same instant, each on its own connection."""
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def run(name: str, decide) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[name] = decide().outcome
        except DecisionError as exc:
            outcomes[name] = f"refused: {exc}"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=("first", first)),
        threading.Thread(target=run, args=("second", second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def _two_pending_with_one_left(agent, customer: str) -> list[ProposedAction]:
    """Two fee refunds already counted for ``customer``; two more wait for approval."""
    for _ in range(2):
        assert refund(start("fee_refund", customer=customer), "5.00", agent=agent).status == S.AUTO_APPROVED
    pending = [refund(start("fee_refund", customer=customer), "40.00", agent=agent) for _ in range(2)]
    assert [p.status for p in pending] == [S.PENDING, S.PENDING]
    return pending


def _fee_refunds_counted(customer: str) -> int:
    return LimitUsage.objects.filter(
        counter__limit__name=FEE_REFUNDS, counter__subject_key=f"customer:{customer}"
    ).count()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(8))
def test_two_simultaneous_approvals_never_exceed_three_fee_refunds_a_year(
    demo, agent, supervisor2, monkeypatch, attempt
):
    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)  # no worker here
    colleague = _servicing_colleague()
    customer = f"CUST-{attempt + 1:05d}"
    a, b = _two_pending_with_one_left(agent, customer)
    outcomes = _race(
        lambda: proposal_approve(proposal_id=a.pk, user=supervisor2, reason="ok"),
        lambda: proposal_approve(proposal_id=b.pk, user=colleague, reason="ok"),
    )
    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["approved", "refused"], outcomes
    refused = next(o for o in outcomes.values() if o.startswith("refused"))
    assert FEE_REFUNDS in refused
    assert _fee_refunds_counted(customer) == 3
    statuses = sorted(ProposedAction.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True))
    assert statuses == [S.APPROVED, S.PENDING]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(4))
def test_an_edit_and_approve_racing_an_approval_never_exceeds_the_limit(demo, agent, supervisor2, monkeypatch, attempt):
    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)
    colleague = _servicing_colleague()
    customer = f"CUST-{attempt + 1:05d}"
    a, b = _two_pending_with_one_left(agent, customer)
    lower = {**b.params, "amount": "39.00"}
    outcomes = _race(
        lambda: proposal_approve(proposal_id=a.pk, user=supervisor2, reason="ok"),
        lambda: proposal_edit_approve(proposal_id=b.pk, user=colleague, params=lower, reason="a little less"),
    )
    approved = [o for o in outcomes.values() if o == "approved"]
    assert len(approved) == 1, outcomes
    assert _fee_refunds_counted(customer) == 3


def test_the_limit_in_the_message_is_the_one_that_was_exceeded(demo, agent, supervisor2):
    """Sequentially the same holds, and the refusal names the limit."""
    a, b = _two_pending_with_one_left(agent, "CUST-00011")
    assert proposal_approve(proposal_id=a.pk, user=supervisor2).outcome == "approved"
    with pytest.raises(DecisionError, match=FEE_REFUNDS):
        proposal_approve(proposal_id=b.pk, user=supervisor2)
    assert CumulativeLimit.objects.get(name=FEE_REFUNDS).counters.get().usages.count() == 3
