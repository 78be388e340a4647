"""The round trip that opens the locked phase of an agent's turn (``runtime._locked_current``):
the journey's lock, the stop button's gates, the active pauses, the lock and head of the
journey's audit chain and what the turn needs from small tables (the rules token, the webhook
subscriptions, the action types it proposes) go to PostgreSQL as one query of several
statements. Nothing read there outlives the phase."""

from __future__ import annotations

import itertools
import zlib

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from api.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from demo.agent import ScriptedAgent
from journeys import events, runtime
from journeys.control import agents_pause
from journeys.models import Agent, Journey, ProposedAction
from journeys.pause_gate import LOCK_CLASS
from journeys.services import journey_start
from review import policy
from review.audit.chain import audit_append
from review.audit.verify import audit_verify
from review.models import AuditRecord, PermissionScope
from review.models.audit import journey_chain

SMALL_TABLES = ("journeys_actiontype", "review_rulesversion", "api_webhooksubscription")


def start() -> Journey:
    return journey_start(definition="lost_card", customer_ref="CUST-00003", request={"reason": "lost"})


def turn(journey: Journey, token: str = "t") -> tuple[str, list[str]]:
    journey.refresh_from_db()
    with CaptureQueriesContext(connection) as captured:
        outcome = runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token=token)
    return outcome, [q["sql"] for q in captured.captured_queries]


def opening(statements: list[str]) -> tuple[str, list[str]]:
    """The statement that locks the journey, and every other one."""
    (lock,) = [sql for sql in statements if "FOR UPDATE OF j" in sql]
    return lock, [sql for sql in statements if sql is not lock]


def test_a_proposing_turn_locks_and_reads_what_it_needs_in_one_round_trip(agent):
    policy.enabled_rules()  # the rules are kept (read them once), as in a worker after its first turn
    journey = start()
    outcome, statements = turn(journey)
    assert outcome == "continued"
    assert journey.proposals.get().status == ProposedAction.Status.EXECUTED
    lock, others = opening(statements)
    assert "pg_advisory_xact_lock_shared" in lock and "journeys_agentpause" in lock
    for table in SMALL_TABLES:
        assert table in lock
        assert not [sql for sql in others if table in sql], f"{table} read again"
    assert not [sql for sql in others if "pg_advisory_xact_lock_shared" in sql]


def test_a_turn_that_only_thinks_reads_only_the_pauses_with_its_lock(agent):
    journey = start()
    assert turn(journey)[0] == "continued"  # the lookup
    outcome, statements = turn(journey)
    assert outcome == "advanced"
    journey.refresh_from_db()
    assert (
        not journey.proposals.filter(step=journey.current_step, epoch=journey.epoch)
        .exclude(status=ProposedAction.Status.EXECUTED)
        .exists()
    )
    lock, others = opening(statements)
    assert "pg_advisory_xact_lock_shared" in lock and "journeys_agentpause" in lock
    assert not [table for table in SMALL_TABLES if table in lock]
    assert not [sql for sql in others if any(table in sql for table in SMALL_TABLES)]


def _gate_key(gate: str) -> str:
    return f"{LOCK_CLASS}, {zlib.crc32(gate.encode()) & 0x7FFFFFFF}"


def test_a_journey_given_another_agent_while_its_agent_thought_takes_that_agents_gate(agent, admin_user, monkeypatch):
    """The gates sent with the lock are the ones the journey had when its turn began; when its
    agent changed meanwhile, the new agent's gate is taken before the pauses are read again, so
    a pause of the new agent still fences the turn."""
    other = Agent.objects.create(
        user=User.objects.create_user("agent-second"), name="Second scripted agent", kind=agent.kind, config={}
    )
    journey = start()
    original = ScriptedAgent.next_turn

    def reassigned_while_thinking(self, snapshot):
        Journey.objects.filter(pk=snapshot.journey_id).update(agent=other)
        return original(self, snapshot)

    monkeypatch.setattr(ScriptedAgent, "next_turn", reassigned_while_thinking)
    outcome, statements = turn(journey)
    assert outcome == "continued"
    lock, others = opening(statements)
    assert _gate_key(f"agent:{agent.pk}") in lock
    assert _gate_key(f"agent:{other.pk}") not in lock
    assert [sql for sql in others if _gate_key(f"agent:{other.pk}") in sql and "journeys_agentpause" in sql]

    agents_pause(user=admin_user, reason="the second agent misbehaves", agent=other)
    journey.refresh_from_db()
    Journey.objects.filter(pk=journey.pk).update(agent=agent)

    def back_to_the_paused_agent(self, snapshot):
        Journey.objects.filter(pk=snapshot.journey_id).update(agent=other)
        return original(self, snapshot)

    monkeypatch.setattr(ScriptedAgent, "next_turn", back_to_the_paused_agent)
    outcome, _ = turn(journey, token="t2")
    assert outcome == "paused"
    journey.refresh_from_db()
    assert journey.lease_token == "" and journey.status == Journey.Status.RUNNING


def test_a_rule_changed_between_two_turns_is_judged_by_the_next_one(agent):
    journey = start()
    assert turn(journey)[0] == "continued"  # lookup: allowed, the rules are now kept
    assert turn(journey)[0] == "advanced"  # thinks
    PermissionScope.objects.filter(action_type__key="block_card", effect="allow").update(effect="deny")
    outcome, _ = turn(journey)
    assert outcome == "denied"
    assert journey.proposals.get(action_type__key="block_card").status == ProposedAction.Status.DENIED


def test_a_subscription_added_between_two_turns_gets_the_next_turns_decision(agent):
    journey = start()
    assert turn(journey)[0] == "continued"
    assert not WebhookDelivery.objects.exists()
    WebhookSubscription.objects.create(
        name="decisions", url="https://example.test/hook", events=[WebhookEvent.DECISION_MADE], secret="whsec_x"
    )
    assert turn(journey)[0] == "advanced"  # thinks: no decision
    assert turn(journey)[0] == "continued"  # blocks the card
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event == WebhookEvent.DECISION_MADE
    assert delivery.payload["data"]["proposal"]["action"] == "block_card"


def test_a_turns_audit_records_use_the_head_read_with_the_lock_and_the_chain_holds(agent):
    journey = start()
    for _ in range(4):
        outcome, statements = turn(journey)
        assert outcome in ("continued", "advanced")
        lock, others = opening(statements)
        assert "pg_advisory_xact_lock(" in lock and "review_auditrecord" in lock
        assert not [sql for sql in others if "pg_advisory_xact_lock(" in sql]
        assert not [sql for sql in others if sql.startswith("SELECT") and "review_auditrecord" in sql]
    records = list(AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq"))
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(records))
    assert audit_verify(use_sink=False).ok


def test_a_head_moved_in_a_savepoint_that_rolled_back_is_read_again(agent):
    """Inside one block, an append that a savepoint rolled back must not become the head the
    next append links to: its head is forgotten and read again under the lock."""
    journey = start()
    chain = journey_chain(journey.pk)
    note = {"chain": chain, "kind": "note", "summary": "a note"}
    with transaction.atomic(), events.together():
        audit_append(**note)  # reads the head, keeps the new one
        with CaptureQueriesContext(connection) as kept:
            audit_append(**note)
        assert not [q for q in kept.captured_queries if q["sql"].startswith("SELECT")]
        try:
            with transaction.atomic():
                audit_append(**note)
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        with CaptureQueriesContext(connection) as again:
            audit_append(**note)
        assert [q for q in again.captured_queries if "review_auditrecord" in q["sql"] and "SELECT" in q["sql"]]
    records = list(AuditRecord.objects.filter(chain=chain).order_by("seq"))
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(records))
    assert audit_verify(use_sink=False).ok
