"""The product without the demo: no imports of it, action types from migrate, production checks.

The no-demo tests run Django in a subprocess with ``HANDOFF_DEMO=0`` (settings decide the
installed apps once per process) against a database of their own.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import environ
import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_APPS = ("journeys", "review", "console", "api")
# What each subprocess sets for itself rather than inheriting from the test run.
CONFIGURED = {
    "HANDOFF_DEMO",
    "DATABASE_URL",
    "HANDOFF_CORE_BANK",
    "SECRET_KEY",
    "AUDIT_SIGNING_KEY",
    "CELERY_BROKER_URL",
}


def _imports_of(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_product_apps_never_import_the_demo():
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for app in PRODUCT_APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        for name in _imports_of(path)
        if name == "demo" or name.startswith("demo.")
    ]
    assert found == []


def test_the_import_check_sees_a_demo_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from demo.models import CoreCard\n    import demo.agent\n")
    assert _imports_of(sample) == ["demo.models", "demo.agent"]


def test_every_step_of_every_demo_definition_has_a_behaviour():
    from demo.definitions import DEMO_DEFINITIONS
    from demo.journeys import JOURNEYS

    assert set(JOURNEYS) == {"card_dispute", "lost_card", "fee_refund", "address_change"}
    assert [d["key"] for d in DEMO_DEFINITIONS] == list(JOURNEYS)
    for key, journey in JOURNEYS.items():
        steps = [step["key"] for step in journey.DEFINITION["spec"]["steps"]]
        assert journey.DEFINITION["key"] == key
        assert journey.DEFINITION["spec"]["start"] in steps
        assert set(journey.STEPS) == set(steps), key  # a behaviour for every step, none left over
        assert all(callable(behaviour) for behaviour in journey.STEPS.values())
        assert callable(journey.customer_request) and callable(journey.customer_reply)
        assert journey.GRANTS["team"] == journey.DEFINITION["team"]
        assert journey.GRANTS["perms"]


def test_the_scripted_agent_refuses_a_step_no_module_describes():
    from demo.agent import ScriptedAgent
    from journeys.agents import AgentError, Snapshot

    snapshot = Snapshot(
        journey_id=1,
        definition="card_dispute",
        step="no_such_step",
        customer="CUST-1",
        channel="chat",
        turn=1,
        context={},
        agent_config={},
    )
    with pytest.raises(AgentError, match="no behaviour for card_dispute/no_such_step"):
        ScriptedAgent().next_turn(snapshot)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in CONFIGURED}
    full.update(env, DJANGO_SETTINGS_MODULE="console.settings", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300
    )


def _scratch_database(suffix: str):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.fail("The production-shape tests need DATABASE_URL pointing at PostgreSQL (make test sets it).")
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_{suffix}"
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def nodemo_database():
    yield from _scratch_database("nodemo")


@pytest.fixture
def adopt_database():
    yield from _scratch_database("adopt")


def test_a_database_from_before_the_demo_app_keeps_its_core_bank_rows(adopt_database):
    """Before the move the core-bank tables belonged to journeys: such a database has the tables
    and rows but no demo migration recorded. Migrating adopts the tables; no row is lost."""
    result = _run(
        """
        import django
        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        call_command("seed_demo", customers=4, verbosity=0)
        call_command("migrate", "demo", "zero", fake=True, verbosity=0)  # as recorded before the move
        assert "journeys_corecustomer" in connection.introspection.table_names()
        call_command("migrate", verbosity=0)

        from demo.models import CoreCustomer
        from django.contrib.contenttypes.models import ContentType

        assert CoreCustomer.objects.count() == 4, CoreCustomer.objects.count()
        assert ContentType.objects.get_for_model(CoreCustomer).app_label == "demo"
        print("ADOPTED")
        """,
        {
            "HANDOFF_DEMO": "1",
            "DATABASE_URL": adopt_database,
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
            "CELERY_QUEUE": "handoff-adopt-test",
        },
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ADOPTED" in result.stdout


def test_an_empty_database_without_the_demo_migrates_and_takes_a_proposal(nodemo_database):
    result = _run(
        """
        import django
        django.setup()
        from django.apps import apps
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        assert not settings.HANDOFF_DEMO and not apps.is_installed("demo"), settings.INSTALLED_APPS
        call_command("migrate", verbosity=0)
        tables = connection.introspection.table_names()
        assert not [t for t in tables if t.startswith("journeys_core")], tables

        from django.contrib.auth.models import Group
        from journeys.actions import ACTION_SPECS
        from journeys.models import ActionType, DefinitionVersion, JourneyDefinition, ProposedAction
        from journeys.services import journey_start, lock_journey, proposal_create

        assert set(ActionType.objects.values_list("key", flat=True)) == set(ACTION_SPECS)
        call_command("migrate", verbosity=0)  # again: idempotent
        assert ActionType.objects.count() == len(ACTION_SPECS)

        team = Group.objects.create(name="Servicing")
        definition = JourneyDefinition.objects.create(
            key="contact", name="Contact", customer_goal="Talk to us", risk_level="low",
            owning_team=team, fallback_queue="Desk",
        )
        DefinitionVersion.objects.create(
            definition=definition, number=1, sla_minutes=30,
            spec={"start": "say", "steps": [
                {"key": "say", "title": "Say", "actions": ["send_message"], "next": {"said": "complete"}, "does": ""}
            ]},
        )
        from django.db import transaction
        with transaction.atomic():
            journey = journey_start(definition=definition, customer_ref="C-1")
        with transaction.atomic():
            journey = lock_journey(journey.pk)
            proposal = proposal_create(
                journey,
                action="send_message",
                params={"customer": "C-1", "text": "Hello"},
                explanation="greet",
                key="k-1",
            )
        assert ProposedAction.objects.get(pk=proposal.pk).action_type.key == "send_message"
        print("PROPOSED", proposal.status)
        """,
        {
            "HANDOFF_DEMO": "0",
            "SECRET_KEY": "nodemo-secret-" + "s" * 40,
            "AUDIT_SIGNING_KEY": "nodemo-audit-" + "a" * 40,
            "DATABASE_URL": nodemo_database,
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
            "CELERY_QUEUE": "handoff-nodemo-test",
            "HANDOFF_CORE_BANK": "tests.own_core_bank.OwnCoreBank",
        },
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "PROPOSED" in result.stdout


def _check_deploy(env: dict[str, str]) -> str:
    result = _run(
        """
        import sys
        from django.core.management import execute_from_command_line
        sys.argv = ["manage.py", "check", "--deploy"]
        execute_from_command_line(sys.argv)
        """,
        env,
    )
    return result.stdout + result.stderr


def test_check_deploy_names_every_embedded_default(tmp_path):
    out = _check_deploy(
        {
            "HANDOFF_VAR_DIR": str(tmp_path),
            "CELERY_BROKER_URL": "filesystem://",
        }
    )
    for check_id, words in [
        ("handoff.E001", "SECRET_KEY is the demo key"),
        ("handoff.E002", "AUDIT_SIGNING_KEY is not set"),
        ("handoff.E003", "embedded SQLite"),
        ("handoff.E004", "embedded filesystem queue"),
        ("handoff.E005", "demo bank is installed"),
    ]:
        assert check_id in out and words in out, out[-3000:]


def test_check_deploy_passes_handoffs_checks_for_a_production_configuration(tmp_path):
    out = _check_deploy(
        {
            "HANDOFF_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://handoff@db.bank.example:5432/handoff",
            "CELERY_BROKER_URL": "redis://redis.bank.example:6379/0",
            "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
            "AUDIT_SIGNING_KEY": "another-long-random-value-" + "y" * 30,
            "HANDOFF_CORE_BANK": "tests.own_core_bank.OwnCoreBank",
        }
    )
    assert "handoff.E" not in out, out[-3000:]


def test_check_deploy_refuses_the_demo_even_on_a_production_database(tmp_path):
    out = _check_deploy(
        {
            "HANDOFF_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://handoff@db.bank.example:5432/handoff",
            "CELERY_BROKER_URL": "redis://redis.bank.example:6379/0",
            "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
            "AUDIT_SIGNING_KEY": "another-long-random-value-" + "y" * 30,
            "HANDOFF_DEMO": "1",
        }
    )
    assert "handoff.E005" in out and "handoff.E006" not in out, out[-3000:]


def test_template_tags_never_query_the_database():
    """Template tags arrange what views put in the context (selectors query); none of them
    imports a models, access or forms module or touches a manager. Whole pages are checked at
    run time in tests/test_render_queries.py."""
    found = []
    for path in sorted(ROOT.glob("*/templatetags/*.py")):
        tree = ast.parse(path.read_text())
        for name in _imports_of(path):
            # A form may carry a queryset its widgets read while rendering: tags get forms from the context.
            if name.endswith((".models", ".access", ".lifecycle", ".forms")) or ".models." in name:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and node.module and "models" in node.module:
                found.append(f"{path.relative_to(ROOT)} imports .{node.module}")
            if isinstance(node, ast.Attribute) and node.attr in (
                "objects",
                "select_related",
                "prefetch_related",
                "exists",
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")
    assert found == []


def test_the_journey_page_tags_render_from_the_context_without_a_query(db, django_assert_num_queries):
    from django.template import Context, Template

    from review.selectors import JourneyReview

    journey = type("J", (), {"pk": 1})()
    event = type("E", (), {"pk": 7, "journey": journey})()
    page = Template("{% load review_tags %}{% event_annotations event %}")
    with django_assert_num_queries(0):
        quiet = page.render(Context({"event": event, "journey_review": JourneyReview(may_annotate=False)}))
        offered = page.render(Context({"event": event, "journey_review": JourneyReview(may_annotate=True)}))
    assert quiet.strip() == ""
    assert "/events/7/" in offered or "Annotate" in offered
