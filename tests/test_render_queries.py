"""Pages read through selectors: no query runs while a template renders.

Views (through ``journeys/selectors.py``, ``review/selectors.py``, ``review/audit/selectors.py``,
``console/selectors.py`` and ``api/selectors.py``) hand templates evaluated data; template tags
only arrange it. Each page below is rendered with a hook on the template engine: any SQL issued
between the start and the end of the outermost template's render is a failure, named with the
template and the SQL.
The page shell's values from the context processor (menu, teams, audit alert) are looked up
lazily when the shell shows them, so a fragment costs none; those lookups are not counted.
"""

from __future__ import annotations

import ast
import contextlib
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.template import base as template_base
from django.urls import reverse

from journeys.services import journey_start

ROOT = Path(__file__).resolve().parent.parent

_state = threading.local()
SHELL = str(ROOT / "console" / "context_processors.py")


def _from_the_shell() -> bool:
    """Whether the query comes from a lazy value of the page shell's context processor."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_filename == SHELL:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def queries_while_rendering():
    """Yield a list that collects (template, sql) for every query issued inside a render."""
    found: list[tuple[str, str]] = []
    original = template_base.Template._render

    def render(self, context):
        depth = getattr(_state, "depth", 0)
        _state.depth = depth + 1
        if depth == 0:
            _state.template = self.name
        try:
            return original(self, context)
        finally:
            _state.depth = depth

    def watch(execute, sql, params, many, context):
        if getattr(_state, "depth", 0) and not _from_the_shell():
            found.append((_state.template, sql))
        return execute(sql, params, many, context)

    template_base.Template._render = render
    try:
        with connection.execute_wrapper(watch):
            yield found
    finally:
        template_base.Template._render = original


HTMX = {"HTTP_HX_REQUEST": "true"}

# (who, url name, what the URL names, also its htmx poll)
PAGES = [
    ("supervisor", "board", None, True),
    ("supervisor", "journey_list", None, True),
    ("supervisor", "desk", None, True),
    ("supervisor", "journey_detail", "journey", False),
    ("supervisor", "journey_timeline", "journey", True),
    ("supervisor", "cases:workbench", None, True),
    ("supervisor", "cases:group", "group", False),
    ("supervisor", "cases:case", "case", False),
    ("supervisor", "cases:event_annotate", "event", False),
    ("supervisor", "cases:labels", None, False),
    ("supervisor", "metrics:overview", None, False),
    ("supervisor", "operator_settings", None, False),
    ("compliance", "audit:search", None, True),
    ("compliance", "audit:record", "record", False),
    ("compliance", "audit:journey", "journey", False),
    ("compliance", "audit:verify", None, False),
    ("admin_user", "team_list", None, False),
    ("admin_user", "team_detail", "team", False),
    ("admin_user", "agent_grants_page", "agent", False),
    ("supervisor", "review_queue", None, True),
    ("supervisor", "review_edit", "proposal", False),
    ("supervisor", "review_samples", None, False),
    ("admin_user", "review_scopes", None, False),
    ("admin_user", "review_scope_create", None, False),
    ("admin_user", "review_scope_edit", "scope", False),
    ("admin_user", "review_limit_create", None, False),
    ("admin_user", "review_limit_edit", "limit", False),
    ("admin_user", "agents_stop_button", None, False),
    ("admin_user", "api_tokens", None, False),
    ("admin_user", "webhooks", None, False),
    ("admin_user", "webhook_detail", "webhook", False),
    ("admin_user", "governance_list", None, False),
    ("admin_user", "governance_detail", "scope_change", False),
    ("admin_user", "governance_detail", "limit_change", False),
    ("admin_user", "governance_detail", "grant_change", False),
]


@pytest.fixture
def world(supervisor, admin_user, agent, settings):
    from django.contrib.auth.models import Group

    from api.models import WebhookAttempt, WebhookDelivery
    from api.tokens import token_create, token_revoke
    from api.webhooks import subscription_create
    from journeys.control import agents_pause
    from journeys.models import Agent, JourneyDefinition, OrganisationGrant, ProposedAction
    from review.cases.services import journey_flag
    from review.models import AuditRecord, CumulativeLimit, PermissionScope, ReviewSample
    from review.services.governance import org_grant_submit, rule_toggle_submit
    from tests.review.helpers import refund

    journeys = [
        journey_start(definition="card_dispute", customer_ref=f"CUST-{i + 1:05d}", request={"reason": "x"})
        for i in range(3)
    ]
    case = journey_flag(journey=journeys[0], actor=supervisor, note="a second look")
    # An auto-approved refund drawn for review (the samples page) and one waiting in the queue.
    settings.HANDOFF = {**settings.HANDOFF, "REVIEW_SAMPLE_SHARE": 1.0}
    sampled = refund(journeys[1], "20.00", agent=agent)
    waiting = refund(journeys[2], "250.00", agent=agent)
    assert ReviewSample.objects.filter(proposal=sampled).exists()
    assert waiting.status == ProposedAction.Status.PENDING
    # A pause on one definition, for the stop button's rows and history.
    agents_pause(user=admin_user, definition=JourneyDefinition.objects.get(key="lost_card"), reason="an incident")
    # API tokens (one an agent's, one revoked) and a webhook with a delivery and its attempt.
    token_create(user=agent.user, name="agent service", created_by=admin_user)
    revoked, _ = token_create(user=admin_user, name="a script", created_by=admin_user)
    token_revoke(token_id=revoked.pk, revoked_by=admin_user)
    sub, _ = subscription_create(
        name="ops", url="https://hooks.example/ops", events=["agents.paused"], agent=agent, user=admin_user
    )
    delivery = WebhookDelivery.objects.create(subscription=sub, event="agents.paused", source="test", attempts=1)
    WebhookAttempt.objects.create(delivery=delivery, status_code=500, error="down", replay_by=admin_user)
    # Governance changes waiting for a second admin: a scope, a limit and organisation-wide rights.
    scope = PermissionScope.objects.filter(action_type__key="send_message").get()
    _, scope_change = rule_toggle_submit(
        model=PermissionScope, pk=scope.pk, enabled=False, actor=admin_user, reason="x"
    )
    limit = CumulativeLimit.objects.filter(is_enabled=True).order_by("pk").first()
    _, limit_change = rule_toggle_submit(
        model=CumulativeLimit, pk=limit.pk, enabled=False, actor=admin_user, reason="x"
    )
    cards = Group.objects.get(name="Cards team")
    _, grant_change = org_grant_submit(team=cards, rights=[OrganisationGrant.Right.PAUSE], actor=admin_user, reason="x")
    assert None not in (scope_change, limit_change, grant_change)
    return {
        "journey": journeys[0].pk,
        "group": case.group_id,
        "case": case.pk,
        "event": case.trigger_event_id,
        "record": AuditRecord.objects.filter(journey_id=journeys[0].pk).order_by("-pk").first().pk,
        "team": Group.objects.get(name="Cards team").pk,
        "agent": Agent.objects.order_by("pk").first().pk,
        "scope": PermissionScope.objects.order_by("pk").first().pk,
        "limit": CumulativeLimit.objects.order_by("pk").first().pk,
        "webhook": sub.pk,
        "proposal": waiting.pk,
        "scope_change": scope_change.pk,
        "limit_change": limit_change.pk,
        "grant_change": grant_change.pk,
    }


@pytest.mark.parametrize(("who", "name", "arg", "poll"), PAGES, ids=[f"{p[1]}-{p[2] or p[0]}" for p in PAGES])
def test_no_query_runs_while_a_page_renders(request, client, world, who, name, arg, poll):
    client.force_login(request.getfixturevalue(who))
    url = reverse(name, args=[world[arg]] if arg else [])
    with queries_while_rendering() as found:
        page = client.get(url)
    assert page.status_code == 200
    assert found == []
    if poll:
        with queries_while_rendering() as found:
            fragment = client.get(url, {"cursor": "stale", "since": "stale", "after": "0"}, **HTMX)
        assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
        assert found == []


def test_the_hook_sees_a_query_issued_while_rendering(db, client, supervisor):
    from django.template import Context, Template

    from journeys.models import JourneyDefinition

    with queries_while_rendering() as found:
        Template("{% for d in definitions %}{{ d.key }}{% endfor %}").render(
            Context({"definitions": JourneyDefinition.objects.all()})
        )
    assert len(found) == 1 and "journeys_journeydefinition" in found[0][1]


# The view modules whose reads live in selectors: they call selector and access functions, never
# a manager or a queryset method themselves.
SELECTOR_VIEWS = [
    "console/views.py",
    "console/board.py",
    "console/desk.py",
    "console/teams.py",
    "console/metrics/views.py",
    "review/cases/views.py",
    "review/audit/views.py",
    "review/views.py",
    "console/control.py",
    "console/api_admin.py",
    "console/governance.py",
]
QUERYSET_CALLS = {
    "filter",
    "exclude",
    "annotate",
    "aggregate",
    "select_related",
    "prefetch_related",
    "values_list",
    "order_by",
    "only",
    "defer",
    "exists",
    "first",
    "last",
    "count",
    "none",
    "distinct",
    "union",
    "select_for_update",
    "in_bulk",
    "iterator",
    "get_or_create",
    "update_or_create",
    "bulk_create",
    "bulk_update",
}


def _direct_queries(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "objects":
            found.append(f"{path.relative_to(root)}:{node.lineno} .objects")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERYSET_CALLS:
            found.append(f"{path.relative_to(root)}:{node.lineno} .{node.func.attr}()")
    return found


def test_views_read_through_selectors():
    assert [hit for name in SELECTOR_VIEWS for hit in _direct_queries(ROOT / name)] == []


def test_the_scan_sees_a_query_in_a_view(tmp_path):
    sample = tmp_path / "views.py"
    sample.write_text("def page(request):\n    rows = Journey.objects.all()\n    return rows.filter(x=1).exists()\n")
    assert sorted(hit.split(" ", 1)[1] for hit in _direct_queries(sample, tmp_path)) == [
        ".exists()",
        ".filter()",
        ".objects",
    ]
