"""The enabled rules kept per process (``review.policy.enabled_rules``): read once, trusted only
while the rules token written by the database triggers has not moved."""

from __future__ import annotations

import importlib
import sqlite3
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from journeys.models import ProposedAction
from review import policy
from review.models import CumulativeLimit, PermissionScope, RulesVersion
from review.services.scopes import scope_set_enabled

from .helpers import refund, start

S = ProposedAction.Status
triggers_sql = importlib.import_module("review.migrations.0007_rules_version")
SMALL_REFUNDS = "Refunds up to 35.00 are automatic"


@pytest.fixture
def journey(demo):
    return start("fee_refund")


def rule_reads(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if 'FROM "review_permissionscope"' in q["sql"] or 'FROM "review_cumulativelimit"' in q["sql"]
    ]


def test_a_second_judgement_reads_only_the_token_when_no_rule_changed(journey, agent):
    refund(journey, "10.00", agent=agent)  # the rules are read and kept
    with CaptureQueriesContext(connection) as captured:
        second = refund(journey, "10.00", agent=agent)
    assert second.status == S.AUTO_APPROVED
    assert rule_reads(captured.captured_queries) == []
    assert sum("review_rulesversion" in q["sql"] for q in captured.captured_queries) == 1


@pytest.mark.parametrize(
    "change",
    [
        # Writes that go around the services: the triggers see them all the same.
        f"UPDATE review_permissionscope SET effect = 'deny' WHERE name = '{SMALL_REFUNDS}'",
        f"UPDATE review_permissionscope SET is_enabled = false WHERE name = '{SMALL_REFUNDS}'",
        "UPDATE review_cumulativelimit SET maximum = 5 WHERE name LIKE 'Refunds per customer%%'",
        f"DELETE FROM review_permissionscope WHERE name = '{SMALL_REFUNDS}'",
    ],
)
def test_any_write_to_a_rule_is_seen_by_the_next_judgement(journey, agent, change):
    assert refund(journey, "10.00", agent=agent).status == S.AUTO_APPROVED
    with connection.cursor() as cursor:
        cursor.execute(change)
    assert refund(journey, "10.00", agent=agent).status != S.AUTO_APPROVED


def test_a_rule_created_through_the_orm_is_seen_by_the_next_judgement(journey, agent):
    assert refund(journey, "10.00", agent=agent).status == S.AUTO_APPROVED
    small = PermissionScope.objects.get(name=SMALL_REFUNDS)
    PermissionScope.objects.create(
        name="Fee refunds need approval for now",
        effect=ProposedAction.Effect.REQUIRE_APPROVAL,
        action_type=small.action_type,
        definition=journey.definition,
    )
    assert refund(journey, "10.00", agent=agent).status == S.PENDING


def test_a_change_that_rolled_back_is_forgotten(journey, agent):
    """A judgement inside the changing transaction keeps the uncommitted rules under a token that
    no committed state will ever have: after the rollback the committed rules apply again."""
    refund(journey, "10.00", agent=agent)
    try:
        with transaction.atomic():
            PermissionScope.objects.filter(name=SMALL_REFUNDS).update(effect="deny")
            assert refund(journey, "10.00", agent=agent).status == S.DENIED
            raise RuntimeError("roll the change back")
    except RuntimeError:
        pass
    assert refund(journey, "10.00", agent=agent).status == S.AUTO_APPROVED


def test_rules_read_while_the_token_moved_are_used_once_and_not_kept(journey, agent, monkeypatch):
    monkeypatch.setattr(policy, "_kept", None)
    tokens = iter([("before", 7), ("after", 8)])
    monkeypatch.setattr(policy, "_read_rules_state", lambda: next(tokens))
    rules = policy.enabled_rules()
    assert rules.scopes and rules.token is None and rules.version == 7
    assert policy._kept is None  # the next judgement reads them again


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_by_another_connection_is_seen(demo, agent, monkeypatch):
    monkeypatch.setattr("journeys.lifecycle.journey.enqueue_turn", lambda *args, **kwargs: None)  # no worker here
    journey = start("fee_refund")
    assert refund(journey, "10.00", agent=agent).status == S.AUTO_APPROVED  # committed, rules kept
    small = PermissionScope.objects.get(name=SMALL_REFUNDS)
    limit = CumulativeLimit.objects.filter(name__startswith="Refunds per customer").get()
    admin = type(agent.user).objects.get(username="admin")
    errors: list[BaseException] = []

    def change() -> None:
        try:
            scope_set_enabled(scope_id=small.pk, enabled=False, actor=admin, reason="Paused for review.")
            CumulativeLimit.objects.filter(pk=limit.pk).update(maximum=Decimal("1000.00"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    other = threading.Thread(target=change)
    other.start()
    other.join()
    assert not errors
    assert refund(journey, "10.00", agent=agent).status == S.DENIED  # no rule left for 10.00
    assert policy._kept is not None and small.pk not in [scope.pk for scope in policy._kept.scopes]
    assert [lim.maximum for lim in policy._kept.limits if lim.pk == limit.pk] == [Decimal("1000.00")]


def test_the_sqlite_triggers_move_the_token_on_every_write_and_restore_a_lost_row():
    """The embedded demo's triggers, run by SQLite itself."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE review_rulesversion (id integer PRIMARY KEY, token varchar(64) NOT NULL)")
    for table in triggers_sql.RULE_TABLES:
        db.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text)")
    for statement in triggers_sql.SQLITE:
        db.execute(statement)

    def token() -> str | None:
        row = db.execute("SELECT token FROM review_rulesversion WHERE id = 1").fetchone()
        return row[0] if row else None

    seen = [token()]
    for table in triggers_sql.RULE_TABLES:
        for write in (
            f"INSERT INTO {table} (id, name) VALUES (1, 'a')",
            f"UPDATE {table} SET name = 'b'",
            f"DELETE FROM {table}",
        ):
            db.execute(write)
            seen.append(token())
            db.execute("DELETE FROM review_rulesversion")  # lost: the next write writes it again
    assert seen[0] is None and all(seen[1:]) and len(set(seen[1:])) == len(seen) - 1


def test_the_row_is_written_by_the_migration_and_moved_by_postgresql(demo):
    before = RulesVersion.objects.get(pk=1).token
    PermissionScope.objects.filter(name=SMALL_REFUNDS).update(name=SMALL_REFUNDS)
    assert RulesVersion.objects.get(pk=1).token not in ("", before)
