"""Every metric on a small hand-built data set, with the expected figures worked out by hand.

The data (all fee refunds, all on 2026-03-02 UTC):

- J1, customer C1, 09:00 to 09:10, completed: the agent alone; verify 120 s, find fee 180 s.
- J2, C2, 10:00 to 10:30, completed: low confidence → handed to a person, taken over;
  verify 60 s, find fee 180 s, check eligibility never finished.
- J3, C2, 12:00 to 12:10, abandoned: repeat of J2 (2 h later); verify 180 s, left at find fee.
- J4, C3, 13:00 to 13:20, completed: two refunds approved by supervisor2, 200.00 in 4 s and
  50.00 edited in 30 s; verify 30 s.
- J5, C4, 14:00 to 14:05, failed: a turn failed; a refund rejected in 60 s; another denied by
  policy; verify never finished.

By hand: 5 journeys; contained = {J1} → 1/5; escalated = {J2} → 1/5; taken over = {J2} → 1/5;
abandoned {J3} 1/5; errored {J5} 1/5; repeat contacts {J3} 1/5; first-contact resolved = completed
with no same-customer journey in the next 7 days = {J1, J4} → 2/5 (J2 is followed by J3).
Person decisions = 2 approvals + 1 rejection = 3; overrides = 1 rejection + 1 edited approval = 2
→ 2/3. Resolution times of completed journeys 600, 1800, 1200 s → sorted 600, 1200, 1800:
p50 = rank ceil(1.5) = 2 → 1200; p90 = rank ceil(2.7) = 3 → 1800. Approval latencies 4, 30, 60:
p50 = 30, p90 = 60. Policy breach attempts 1. Verify identity times 120, 60, 180, 30 → sorted
30, 60, 120, 180: p50 = rank 2 → 60, p90 = rank ceil(3.6) = 4 → 180. Funnel: verify reached 5,
find fee 3, eligibility 1; abandoned at find fee 1 → 1/3.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from console.metrics import definitions
from console.metrics.definitions import Window, compute, percentile

from .metric_data import DAY, build_hand_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def hand_data(demo, supervisor2, settings):
    return build_hand_data(settings=settings, supervisor2=supervisor2)


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([40, 10, 30, 20], 50) == 20
    assert percentile([40, 10, 30, 20], 90) == 40
    assert percentile([600, 1800, 1200], 50) == 1200


def test_outcome_rates_match_the_hand_computed_figures(hand_data):
    m = compute([hand_data], Window(DAY, DAY))
    assert m.counters["journeys"] == 5
    assert m.counters["completed"] == 3
    assert m.rates["containment_rate"] == pytest.approx(1 / 5)
    assert m.rates["escalation_rate"] == pytest.approx(1 / 5)
    assert m.rates["takeover_rate"] == pytest.approx(1 / 5)
    assert m.rates["abandonment_rate"] == pytest.approx(1 / 5)
    assert m.rates["error_rate"] == pytest.approx(1 / 5)
    assert m.rates["repeat_contact_rate"] == pytest.approx(1 / 5)
    assert m.rates["first_contact_resolution"] == pytest.approx(2 / 5)
    assert m.counters["person_decisions"] == 3
    assert m.rates["override_frequency"] == pytest.approx(2 / 3)
    assert m.counters["policy_denials"] == 1


def test_durations_are_nearest_rank_percentiles(hand_data):
    m = compute([hand_data], Window(DAY, DAY))
    assert m.durations == {
        "resolution_p50": 1200,
        "resolution_p90": 1800,
        "approval_latency_p50": 30,
        "approval_latency_p90": 60,
    }


def test_funnel_and_time_per_step(hand_data):
    m = compute([hand_data], Window(DAY, DAY))
    steps = {s["step"]: s for s in m.steps}
    assert [s["step"] for s in m.funnel][:3] == ["verify_identity", "find_fee", "check_eligibility"]
    assert (
        steps["verify_identity"]["reached"],
        steps["find_fee"]["reached"],
        steps["check_eligibility"]["reached"],
        steps["refund"]["reached"],
    ) == (5, 3, 1, 0)
    assert steps["find_fee"]["abandoned"] == 1
    assert steps["find_fee"]["abandonment_share"] == pytest.approx(1 / 3)
    assert steps["verify_identity"]["runs"] == 4
    assert steps["verify_identity"]["p50_seconds"] == 60
    assert steps["verify_identity"]["p90_seconds"] == 180
    assert steps["verify_identity"]["mean_seconds"] == pytest.approx(97.5)
    assert steps["find_fee"]["p50_seconds"] == 180
    assert steps["refund"]["overrides"] == 2
    assert steps["check_eligibility"]["exceptions"] == 1
    assert steps["find_fee"]["exceptions"] == 1


def test_breakdown_by_policy_rule(hand_data):
    rules = {r["rule"]: r for r in compute([hand_data], Window(DAY, DAY)).rules}
    approval = rules["fee refunds over 35 need one approval"]
    assert (
        approval["decided"],
        approval["rejected"],
        approval["edited"],
        approval["overrides"],
    ) == (3, 1, 1, 2)
    assert approval["override_rate"] == pytest.approx(2 / 3)
    assert rules["refunds above 5000 denied"]["denied"] == 1
    assert rules["refunds above 5000 denied"]["decided"] == 0


def test_reviewer_figures_and_quick_high_value_approvals(hand_data):
    m = compute([hand_data], Window(DAY, DAY))
    assert m.reviewers == [
        {
            "approver": "supervisor2",
            "decisions": 3,
            "approved": 2,
            "rejected": 1,
            "approval_rate": pytest.approx(2 / 3),
            "p50_seconds": 30,
            "p90_seconds": 60,
        }
    ]
    assert [(f.amount, f.latency_seconds) for f in m.flagged] == [(Decimal("200.00"), 4)]


def test_exceptions_by_group(hand_data):
    groups = compute([hand_data], Window(DAY, DAY)).exception_groups
    assert sorted((g["label"], g["count"]) for g in groups) == [
        ("fee refund / check eligibility / low confidence", 1),
        ("fee refund / find the fee / abandoned / customer left", 1),
    ]


def test_a_window_without_the_day_is_empty_and_the_trend_has_one_point_per_day(hand_data):
    other = compute([hand_data], Window(DAY + timedelta(days=1), DAY + timedelta(days=3)))
    assert other.counters["journeys"] == 0
    assert other.rates["containment_rate"] is None
    assert len(other.trend) == 3
    week = compute([hand_data], Window(DAY - timedelta(days=6), DAY))
    assert [p["journeys"] for p in week.trend] == [0, 0, 0, 0, 0, 0, 5]
    assert week.trend[-1]["containment_rate"] == pytest.approx(0.2)


def test_rollup_counters_equal_counters_straight_from_the_facts(hand_data):
    window = Window(DAY, DAY)
    assert definitions.counters_from_rollups([hand_data.pk], window) == definitions.counters_from_facts(
        [hand_data.pk], window
    )
