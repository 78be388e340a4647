"""One lifecycle per aggregate: named transitions are the only writers of journey and proposal
state; the database refuses states no transition produces; pages derive buttons from them."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from journeys import policy
from journeys.control import journey_take_over
from journeys.errors import IllegalTransition
from journeys.lifecycle import journey as journey_lifecycle
from journeys.lifecycle import proposal as proposal_lifecycle
from journeys.lifecycle import transitions_for
from journeys.models import Journey, ProposedAction
from journeys.services import journey_start, lock_journey
from review.models import ApprovalRequest, LimitUsage
from tests.review.helpers import refund

ROOT = Path(__file__).resolve().parents[2]
S = Journey.Status
P = ProposedAction.Status


def _journey(definition: str = "card_dispute", customer: str = "CUST-00008") -> Journey:
    return journey_start(definition=definition, customer_ref=customer, request={"reason": "lost"})


@pytest.fixture
def cards_colleague(demo):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("carla", password="demo")
    user.groups.add(Group.objects.get(name="Cards team"))
    return user


# --- only the transitions write state ---------------------------------------------------------

LIFECYCLE_ATTRS = {
    "status",
    "waiting_on",
    "controller_user",
    "controller_user_id",
    "epoch",
    "lease_token",
    "lease_until",
    "next_run_at",
}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and sub.attr in LIFECYCLE_ATTRS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} assigns .{sub.attr}")
        # Journey.objects….update(status=…) / ProposedAction.objects….update(status=…)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
            root = node.func.value
            while isinstance(root, ast.Call | ast.Attribute):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id in ("Journey", "ProposedAction"):
                names = {kw.arg for kw in node.keywords}
                bad = names & (LIFECYCLE_ATTRS if root.id == "Journey" else {"status"})
                if bad:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} updates {sorted(bad)} of {root.id}")
    return found


def test_no_code_outside_the_lifecycle_modules_writes_journey_or_proposal_state():
    lifecycle_dir = ROOT / "journeys" / "lifecycle"
    found = []
    for app in ("journeys", "review", "console", "api"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if lifecycle_dir in path.parents or "migrations" in path.parts:
                continue
            found += [v for v in _violations(path) if "Case" not in v]
    # Other models have a status of their own (exception cases, core-bank cards): only journeys
    # and proposals are this test's concern, so list the files that may name one.
    allowed = {
        "review/cases/services.py",
        "demo/corebank.py",
        "journeys/models/domain.py",
        "api/v1.py",  # ApiError.status: an HTTP status
        "api/webhooks.py",  # WebhookDelivery.status
    }
    found = [v for v in found if v.split(":")[0] not in allowed]
    assert found == []


def test_save_refuses_a_status_written_by_hand(demo):
    journey = _journey()
    journey.status = S.COMPLETED
    with pytest.raises(ValueError, match=r"journeys\.lifecycle"):
        journey.save()
    fresh = Journey.objects.get(pk=journey.pk)
    fresh.controller_user_id = 1
    with pytest.raises(ValueError):
        fresh.save(update_fields=["controller_user"])
    assert Journey.objects.get(pk=journey.pk).status == S.RUNNING


def test_a_transition_from_a_state_it_does_not_allow_is_a_domain_error(demo, supervisor):
    journey = _journey()
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        with pytest.raises(IllegalTransition, match="nothing to hand back"):
            journey_lifecycle.hand_back(locked, user=supervisor)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        with pytest.raises(IllegalTransition, match="cannot wait for approval"):
            journey_lifecycle.wait_for_approval(locked)
        with pytest.raises(IllegalTransition):
            journey_lifecycle.begin_turn(locked, token="t", until=timezone.now())
    assert Journey.objects.get(pk=journey.pk).status == S.HUMAN


def test_a_stale_instance_loses_the_conditional_update(demo, supervisor):
    """The SQL itself says WHERE status IN (sources): a caller that skipped the lock and holds
    an out-of-date instance cannot move the journey from a state the table does not allow."""
    journey = _journey()
    stale = Journey.objects.get(pk=journey.pk)  # running, as read before the takeover
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with pytest.raises(IllegalTransition, match="changed meanwhile"):
        journey_lifecycle.wait_for_approval(stale)
    row = Journey.objects.get(pk=journey.pk)
    assert (row.status, row.controller_user_id) == (S.HUMAN, supervisor.pk)


def test_finishing_clears_the_controller_and_withdraws_what_is_pending(demo, agent, supervisor):
    journey = _journey()
    pending = refund(journey, "120.00", agent=agent)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with transaction.atomic():
        journey_lifecycle.finish(lock_journey(journey.pk), S.COMPLETED, "Done by hand.")
    row = Journey.objects.get(pk=journey.pk)
    assert (row.status, row.controller_user_id, row.waiting_on) == (S.COMPLETED, None, "")
    assert ProposedAction.objects.get(pk=pending.pk).status == P.WITHDRAWN


# --- the database holds the invariants --------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"status": S.RUNNING, "controller_user_id": "person"},
        {"status": S.COMPLETED, "controller_user_id": "person"},
        {"status": S.WAITING_APPROVAL, "waiting_on": ""},
        {"status": S.RUNNING, "waiting_on": "approval"},
        {"status": S.HUMAN, "waiting_on": "customer"},
        {"status": S.HUMAN, "lease_until": "now"},
    ],
    ids=[
        "controller-while-running",
        "controller-when-finished",
        "waiting-approval-on-nothing",
        "running-on-approval",
        "human-on-customer",
        "lease-while-human",
    ],
)
def test_the_database_refuses_a_state_no_transition_produces(demo, supervisor, changes):
    journey = _journey()
    values = {
        key: supervisor.pk if value == "person" else (timezone.now() if value == "now" else value)
        for key, value in changes.items()
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(**values)


def test_the_database_refuses_a_pending_proposal_with_a_decider_or_an_execution_time(demo, agent, supervisor):
    pending = refund(_journey(), "120.00", agent=agent)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProposedAction.objects.filter(pk=pending.pk).update(decided_by=supervisor)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProposedAction.objects.filter(pk=pending.pk).update(executed_at=timezone.now())


# --- the policy seam: a pure judgement, effects applied by the transition -----------------------


def test_the_policy_judgement_writes_nothing_and_the_transition_applies_its_effects(demo, agent):
    journey = _journey()
    pending = refund(journey, "120.00", agent=agent)
    assert ApprovalRequest.objects.filter(proposal=pending).count() == 1  # applied by propose
    with transaction.atomic():
        pending.journey = lock_journey(journey.pk)
        usage, requests = LimitUsage.objects.count(), ApprovalRequest.objects.count()
        decision = policy.decide(pending)
        decision_again = policy.decide(pending)
        assert (LimitUsage.objects.count(), ApprovalRequest.objects.count()) == (usage, requests)
        assert (decision.effect, decision.rule) == (decision_again.effect, decision_again.rule)
        assert not LimitUsage.objects.filter(proposal=pending).exists()  # pending: not counted yet
        policy.apply(pending, decision, outcome=P.APPROVED)
        assert LimitUsage.objects.filter(proposal=pending).exists()  # the demo's refund limits


# --- races on separate connections ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(6))
def test_two_unlocked_transitions_of_one_proposal_have_exactly_one_winner(
    demo, agent, supervisor, cards_colleague, monkeypatch, attempt
):
    """Without the journey lock (each thread on its own connection with its own instance), the
    conditional UPDATE alone still lets exactly one of approve / reject win."""
    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)
    pending = refund(_journey(customer=f"CUST-0000{attempt + 1}"), "120.00", agent=agent)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}
    decision = policy.Decision(effect="require_approval", rule="test", explanation="test", required_approvals=1)

    def run(name: str) -> None:
        try:
            mine = ProposedAction.objects.select_related("action_type", "journey").get(pk=pending.pk)
            with transaction.atomic():
                barrier.wait(timeout=10)
                if name == "approve":
                    proposal_lifecycle.approve(
                        mine, by=supervisor, reason="ok", required=1, decision=decision, summary="ok", data={}
                    )
                else:
                    proposal_lifecycle.reject(mine, by=cards_colleague, reason="no", summary="no", data={})
            outcomes[name] = "won"
        except IllegalTransition as exc:
            outcomes[name] = f"lost: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("approve", "reject")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["lost", "won"], outcomes
    final = ProposedAction.objects.get(pk=pending.pk).status
    assert final == (P.APPROVED if outcomes["approve"] == "won" else P.REJECTED)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(4))
def test_two_people_taking_over_at_once_leave_one_controller(demo, supervisor, cards_colleague, monkeypatch, attempt):
    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)
    monkeypatch.setattr("journeys.services.enqueue_turn", lambda *args, **kwargs: None)
    journey = _journey(customer=f"CUST-0000{attempt + 1}")
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def run(user) -> None:
        try:
            barrier.wait(timeout=10)
            journey_take_over(journey_id=journey.pk, user=user)
            results[user.username] = "won"
        except Exception as exc:
            results[user.username] = type(exc).__name__
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in (supervisor, cards_colleague)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results.values()) == ["AlreadyControlled", "won"], results
    row = Journey.objects.get(pk=journey.pk)
    winner = next(name for name, r in results.items() if r == "won")
    assert row.controller_user.username == winner
    assert row.epoch == journey.epoch + 1


# --- buttons come from the same transitions -----------------------------------------------------


def test_transitions_for_a_journey_follow_control_and_rights(demo, supervisor, cards_colleague, compliance):
    journey = _journey()
    assert transitions_for(supervisor, journey) == {"take_over"}
    assert transitions_for(compliance, journey) == set()  # may view, not take over
    journey_take_over(journey_id=journey.pk, user=supervisor)
    journey = Journey.objects.get(pk=journey.pk)
    assert transitions_for(supervisor, journey) == {"hand_back", "act"}
    assert transitions_for(cards_colleague, journey) == set()  # no pause right: cannot force
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    assert transitions_for(admin, journey) == {"force_hand_back"}


def test_transitions_for_a_proposal_never_offer_approval_to_its_proposer(demo, supervisor, cards_colleague):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    from journeys.control import person_propose

    mine = person_propose(
        journey_id=journey.pk,
        user=supervisor,
        action="issue_refund",
        params={"account": "ACC-000008", "amount": "120.00", "reason": "r", "customer": "CUST-00008"},
        explanation="by hand",
    )
    assert mine.status == P.PENDING
    assert transitions_for(supervisor, mine) == {"reject", "withdraw"}
    assert transitions_for(cards_colleague, mine) == {"approve", "edit", "reject"}


def test_the_journey_page_shows_exactly_the_buttons_the_lifecycle_allows(client, demo, supervisor, cards_colleague):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    from journeys.control import person_propose

    mine = person_propose(
        journey_id=journey.pk,
        user=supervisor,
        action="issue_refund",
        params={"account": "ACC-000008", "amount": "120.00", "reason": "r", "customer": "CUST-00008"},
        explanation="by hand",
    )
    client.force_login(supervisor)
    page = client.get(f"/journeys/{journey.pk}/").content.decode()
    assert 'data-decide="approve"' not in page  # the proposer never sees Approve
    assert 'data-decide="reject"' in page
    assert f"/proposals/{mine.pk}/withdraw/" in page
    assert "Hand back to the agent" in page
    client.force_login(cards_colleague)
    page = client.get(f"/journeys/{journey.pk}/").content.decode()
    assert 'data-decide="approve"' in page
    assert "Withdraw</button>" not in page
    assert "Hand back to the agent" not in page
    assert 'id="take-over"' not in page


@pytest.mark.parametrize("with_agent", [True, False])
def test_lock_journey_loads_what_the_orm_would_in_one_statement(demo, with_agent, django_assert_num_queries):
    """``lock_journey`` builds its SQL once per process; the instances it returns are the ones
    ``select_for_update().select_related(...)`` returns, field for field and type for type."""
    journey = _journey()
    if not with_agent:
        Journey.objects.filter(pk=journey.pk).update(agent=None)
    with transaction.atomic():
        with django_assert_num_queries(1):
            mine = lock_journey(journey.pk)
            assert (mine.definition.key, mine.version.pk) == (journey.definition.key, journey.version_id)
            assert (mine.agent is not None) == with_agent
        orm = (
            Journey.objects.select_for_update(of=("self",))
            .select_related("definition", "version", "agent")
            .get(pk=journey.pk)
        )
    pairs = [(mine, orm), (mine.definition, orm.definition), (mine.version, orm.version)]
    if with_agent:
        pairs.append((mine.agent, orm.agent))
    for ours, theirs in pairs:
        assert not ours._state.adding and ours._state.db == theirs._state.db
        for field in type(ours)._meta.concrete_fields:
            assert getattr(ours, field.attname) == getattr(theirs, field.attname), field.name
            assert type(getattr(ours, field.attname)) is type(getattr(theirs, field.attname)), field.name
    assert mine.shown_state() == orm.shown_state()
    mine.context["facts"] = {"changed": True}
    journey_lifecycle.end_turn(mine, run_next=False)  # a locked instance goes through a transition
    assert Journey.objects.get(pk=journey.pk).context["facts"] == {"changed": True}
    assert lock_journey(0) is None
