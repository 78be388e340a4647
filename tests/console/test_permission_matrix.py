"""Every URL the console has, with every demo role and a foreign-team user.

The table below is the contract: the expected status of each URL name for each role. The test
walks Django's resolver and FAILS on a URL name missing from the table, so a new page cannot
ship without saying who may use it. ``OTHER_METHODS`` adds the second method of the URLs that
answer both GET and POST, and a GET on endpoints that only take POSTs. Each request runs in a
savepoint that is rolled back, so state-changing POSTs do not leak into the next request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api.models import ApiToken, WebhookDelivery, WebhookSubscription
from api.tokens import token_create
from api.webhooks import subscription_create
from journeys.control import journey_take_over
from journeys.models import Agent, Journey, ProposedAction
from journeys.services import journey_start
from review.models import (
    AuditRecord,
    AuditVerification,
    CumulativeLimit,
    ExceptionCase,
    GovernanceChange,
    Label,
    PermissionScope,
    ReviewSample,
)
from review.services.governance import rule_toggle_submit

from ..review.case_helpers import hand_over
from ..review.helpers import propose

ROLES = ["anonymous", "outsider", "supervisor", "supervisor2", "compliance", "admin", "lead"]

# Namespaces left out of the table, each with its reason.
EXCLUDED_NAMESPACES = {
    "admin": "Django's own admin: every page requires is_staff; its index is in the table",
    "api-v1": "the JSON API authenticates bearer tokens, not sessions: tests/api walks its grants",
}


@dataclass
class Objects:
    journey: Journey  # a card dispute: Cards team's, foreign to the Servicing team
    record: AuditRecord
    cards: Group
    agent_pk: int
    supervisor_pk: int
    verification_pk: int
    controlled: Journey  # a card dispute the supervisor has taken over
    withdrawable: ProposedAction  # pending on ``controlled``: only the person in control withdraws
    address_update: ProposedAction  # pending on an address change: the Servicing team decides
    sample: ReviewSample  # an auto-approved card dispute action picked for review
    case: ExceptionCase  # an agent error on a card dispute
    event_pk: int  # an event of ``journey``
    scope: PermissionScope
    limit: CumulativeLimit
    label: Label
    governance: GovernanceChange  # pending, requested by admin2: the admin may decide it
    token: ApiToken
    webhook: WebhookSubscription
    delivery: WebhookDelivery


@dataclass
class Row:
    kwargs: Callable[[Objects], dict[str, Any]] = lambda o: {}
    method: str = "get"
    data: Callable[[Objects], dict[str, Any]] = lambda o: {}
    expect: dict[str, int] = field(default_factory=dict)
    htmx: bool = False


def per_role(
    anonymous: int,
    outsider: int,
    supervisor: int,
    supervisor2: int,
    compliance: int,
    admin: int,
    lead: int | None = None,
) -> dict[str, int]:
    """``lead`` (Escalations desk) holds no standing grant: unless said otherwise, exactly what a
    user in no team gets. Nothing is escalated in this table, so the desk decides nothing here;
    tests/review/test_escalation.py covers the escalated items."""
    lead = outsider if lead is None else lead
    return dict(zip(ROLES, [anonymous, outsider, supervisor, supervisor2, compliance, admin, lead], strict=True))


LOGGED_IN_OK = per_role(302, 200, 200, 200, 200, 200)
CARD_JOURNEY = per_role(302, 404, 200, 404, 200, 200)  # supervisor2 is the foreign team
AUDITORS = per_role(302, 404, 404, 404, 200, 200)
ADMINS_GET = per_role(302, 404, 404, 404, 404, 200)
ADMINS_POST = per_role(302, 404, 404, 404, 404, 302)
ADMINS_FORM_POST = per_role(302, 404, 404, 404, 404, 200)  # the answer shows a new secret once
UNMASKERS = per_role(302, 404, 200, 404, 200, 200)
VIEWERS = per_role(302, 404, 200, 200, 200, 200)  # anyone who may view some journey
# Pages reachable exactly when they are in the role's menu (console/navigation.py): the
# approval queue for approvers and the Escalations desk, samples for approvers and auditors.
APPROVERS_MENU = per_role(302, 404, 200, 200, 404, 200, lead=200)
SAMPLE_REVIEWERS = per_role(302, 404, 200, 200, 200, 200)
LOGGED_IN_POST = per_role(302, 302, 302, 302, 302, 302)
# Changes on a card dispute: compliance may see it (403 names the missing right), the foreign
# team may not (404); the admin is a superuser.
CARD_CHANGE = per_role(302, 404, 302, 404, 403, 302)
# Acting on a journey someone controls: only the person in control (the supervisor).
IN_CONTROL = per_role(302, 404, 302, 404, 403, 403)
# Deciding a Servicing team's pending action: the Cards team and compliance get 404.
SERVICING_DECIDERS = per_role(302, 404, 404, 302, 404, 302)
SERVICING_DECIDERS_GET = per_role(302, 404, 404, 200, 404, 200)
CARD_DECIDERS = per_role(302, 404, 302, 404, 404, 302)
# Scopes and limits: auditors read them, only admins change them.
SCOPE_EDITORS_GET = per_role(302, 404, 404, 404, 403, 200)
SCOPE_EDITORS_POST = per_role(302, 404, 404, 404, 403, 302)
LABEL_EDITORS_POST = per_role(302, 403, 403, 403, 403, 302)
POST_ONLY = per_role(405, 405, 405, 405, 405, 405)

journey_pk = lambda o: {"pk": o.journey.pk}  # noqa: E731
controlled_pk = lambda o: {"pk": o.controlled.pk}  # noqa: E731
address_update_pk = lambda o: {"pk": o.address_update.pk}  # noqa: E731
REASON = {"reason": "Permission matrix check"}
SCOPE_FORM = {
    "name": "Matrix scope",
    "effect": "allow",
    "approval_timeout_minutes": "10",
    "on_timeout": "fallback",
    **REASON,
}
LIMIT_FORM = {
    "name": "Matrix limit",
    "measure": "count",
    "subject": "customer",
    "maximum": "3",
    "window_minutes": "60",
    "effect_when_exceeded": "require_approval",
    **REASON,
}


def scope_form(o: Objects) -> dict[str, Any]:
    return {**SCOPE_FORM, "action_type": o.scope.action_type_id}


def limit_form(o: Objects) -> dict[str, Any]:
    return {**LIMIT_FORM, "action_type": o.limit.action_type_id}


TABLE: dict[str, Row] = {
    "home": Row(expect=per_role(302, 302, 302, 302, 302, 302)),
    "login": Row(expect=per_role(200, 302, 302, 302, 302, 302)),
    "logout": Row(method="post", expect=per_role(302, 302, 302, 302, 302, 302)),
    "no_access": Row(expect=LOGGED_IN_OK),
    "operator_settings": Row(expect=LOGGED_IN_OK),
    "healthz": Row(expect=per_role(200, 200, 200, 200, 200, 200)),
    "journey_list": Row(expect=VIEWERS),
    "journey_detail": Row(kwargs=journey_pk, expect=CARD_JOURNEY),
    "journey_timeline": Row(kwargs=journey_pk, expect=CARD_JOURNEY, htmx=True),
    "admin:index": Row(expect=per_role(302, 302, 302, 302, 302, 200)),
    "audit:search": Row(expect=AUDITORS),
    "audit:export_csv": Row(expect=AUDITORS),
    "audit:export_jsonl": Row(expect=AUDITORS),
    "audit:record": Row(kwargs=lambda o: {"pk": o.record.pk}, expect=AUDITORS),
    "audit:journey": Row(kwargs=journey_pk, expect=AUDITORS),
    "audit:journey_export_csv": Row(kwargs=journey_pk, expect=AUDITORS),
    "audit:journey_export_jsonl": Row(kwargs=journey_pk, expect=AUDITORS),
    "audit:unmask": Row(
        kwargs=journey_pk,
        method="post",
        htmx=True,
        expect=UNMASKERS,
        data=lambda o: {"field": "facts.card", "reason": "Permission matrix check"},
    ),
    "audit:verify": Row(expect=AUDITORS),
    "audit:verify_start": Row(method="post", htmx=True, expect=AUDITORS),
    "audit:verify_progress": Row(kwargs=lambda o: {"pk": o.verification_pk}, expect=AUDITORS, htmx=True),
    # Compliance and admins may acknowledge a failed run; this one has not failed (409).
    "audit:verify_acknowledge": Row(
        kwargs=lambda o: {"pk": o.verification_pk},
        method="post",
        data=lambda o: {"note": "Permission matrix check"},
        expect=per_role(302, 404, 404, 404, 409, 409),
    ),
    "team_list": Row(expect=ADMINS_GET),
    "team_create": Row(method="post", data=lambda o: {"name": "Matrix team"}, expect=ADMINS_POST),
    "team_detail": Row(kwargs=lambda o: {"pk": o.cards.pk}, expect=ADMINS_GET),
    "team_grants": Row(kwargs=lambda o: {"pk": o.cards.pk}, method="post", expect=ADMINS_POST),
    "team_org_rights": Row(
        kwargs=lambda o: {"pk": o.cards.pk},
        method="post",
        data=lambda o: {"org:audit": "on", "reason": "Permission matrix check"},
        expect=ADMINS_POST,
    ),
    "team_member_add": Row(
        kwargs=lambda o: {"pk": o.cards.pk},
        method="post",
        data=lambda o: {"username": "supervisor2"},
        expect=ADMINS_POST,
    ),
    "team_member_remove": Row(
        kwargs=lambda o: {"pk": o.cards.pk, "user_id": o.supervisor_pk},
        method="post",
        expect=ADMINS_POST,
    ),
    "team_delete": Row(kwargs=lambda o: {"pk": o.cards.pk}, method="post", expect=ADMINS_POST),
    "agent_grants_page": Row(kwargs=lambda o: {"pk": o.agent_pk}, expect=ADMINS_GET),
    "agent_grants": Row(kwargs=lambda o: {"pk": o.agent_pk}, method="post", expect=ADMINS_POST),
    # Governance changes waiting for a second admin (console/governance.py).
    "governance_list": Row(expect=ADMINS_GET),
    "governance_detail": Row(kwargs=lambda o: {"pk": o.governance.pk}, expect=ADMINS_GET),
    "governance_approve": Row(kwargs=lambda o: {"pk": o.governance.pk}, method="post", expect=ADMINS_POST),
    "governance_reject": Row(
        kwargs=lambda o: {"pk": o.governance.pk}, method="post", data=lambda o: REASON, expect=ADMINS_POST
    ),
    # The live board and the control of journeys (console/board.py, console/control.py).
    "board": Row(expect=VIEWERS),
    "journey_take_over": Row(kwargs=journey_pk, method="post", expect=CARD_CHANGE),
    # The desks' work queue (console/desk.py): for people who may take over some journey.
    "desk": Row(expect=per_role(302, 404, 200, 200, 404, 200)),
    "desk_claim_next": Row(method="post", expect=per_role(302, 404, 302, 302, 404, 302)),
    "desk_claim_selected": Row(
        method="post",
        data=lambda o: {"journeys": [o.case.journey_id]},
        expect=per_role(302, 404, 302, 302, 404, 302),  # the foreign team is told it is not theirs
    ),
    "journey_assign": Row(
        kwargs=lambda o: {"pk": o.case.journey_id},
        method="post",
        data=lambda o: {"assignee": "supervisor"},
        expect=per_role(302, 404, 302, 404, 404, 302),
    ),
    "journey_release": Row(kwargs=controlled_pk, method="post", expect=per_role(302, 404, 302, 404, 404, 302)),
    "journey_hand_back": Row(
        kwargs=controlled_pk,
        method="post",
        data=lambda o: {"note": "Matrix", "force": "1"},
        expect=per_role(302, 404, 302, 404, 403, 302),  # the admin may force a hand-back
    ),
    "journey_send_message": Row(
        kwargs=controlled_pk, method="post", data=lambda o: {"text": "Hello"}, expect=IN_CONTROL
    ),
    "journey_propose": Row(
        kwargs=controlled_pk,
        method="post",
        data=lambda o: {
            "action": "send_message",
            "send_message-customer": o.controlled.customer_ref,
            "send_message-text": "Hello",
            "explanation": "Matrix",
        },
        expect=IN_CONTROL,
    ),
    "journey_execute_approved": Row(kwargs=controlled_pk, method="post", expect=IN_CONTROL),
    "proposal_withdraw": Row(
        kwargs=lambda o: {"pk": o.withdrawable.pk},
        method="post",
        data=lambda o: REASON,
        expect=IN_CONTROL,
    ),
    "agents_stop_button": Row(
        method="post",
        data=lambda o: {"scope": "card_dispute", "op": "pause", **REASON},
        expect=ADMINS_POST,
    ),
    # The approval queue, scopes and samples (review/urls.py).
    "review_queue": Row(expect=APPROVERS_MENU),
    "review_approve": Row(kwargs=address_update_pk, method="post", expect=SERVICING_DECIDERS),
    "review_reject": Row(kwargs=address_update_pk, method="post", data=lambda o: REASON, expect=SERVICING_DECIDERS),
    "review_claim": Row(kwargs=address_update_pk, method="post", expect=SERVICING_DECIDERS),
    "review_release_claim": Row(kwargs=address_update_pk, method="post", expect=SERVICING_DECIDERS),
    "review_edit": Row(
        kwargs=address_update_pk,
        method="post",
        data=lambda o: {
            "customer": o.address_update.params["customer"],
            "address": "1 Matrix Street, Springfield",
            "edit_reason": "Permission matrix check",
        },
        expect=SERVICING_DECIDERS,
    ),
    # Every signed-in user may post a batch: only the actions in their own queue are decided.
    "review_batch": Row(
        method="post",
        data=lambda o: {"ids": [o.address_update.pk], "decision": "approve"},
        expect=LOGGED_IN_POST,
    ),
    "review_scopes": Row(expect=AUDITORS),
    "review_scope_create": Row(method="post", data=scope_form, expect=SCOPE_EDITORS_POST),
    "review_scope_edit": Row(
        kwargs=lambda o: {"pk": o.scope.pk},
        method="post",
        data=scope_form,
        expect=SCOPE_EDITORS_POST,
    ),
    "review_scope_toggle": Row(
        kwargs=lambda o: {"pk": o.scope.pk},
        method="post",
        data=lambda o: REASON,
        expect=SCOPE_EDITORS_POST,
    ),
    "review_limit_create": Row(method="post", data=limit_form, expect=SCOPE_EDITORS_POST),
    "review_limit_edit": Row(
        kwargs=lambda o: {"pk": o.limit.pk},
        method="post",
        data=limit_form,
        expect=SCOPE_EDITORS_POST,
    ),
    "review_limit_toggle": Row(
        kwargs=lambda o: {"pk": o.limit.pk},
        method="post",
        data=lambda o: REASON,
        expect=SCOPE_EDITORS_POST,
    ),
    "review_samples": Row(expect=SAMPLE_REVIEWERS),
    "review_sample_mark": Row(
        kwargs=lambda o: {"pk": o.sample.pk},
        method="post",
        data=lambda o: {"verdict": "fine"},
        expect=CARD_DECIDERS,
    ),
    # Exceptions and annotations (review/cases/urls.py).
    "cases:workbench": Row(expect=VIEWERS),
    "cases:group": Row(kwargs=lambda o: {"pk": o.case.group_id}, expect=CARD_JOURNEY),
    "cases:group_action": Row(
        kwargs=lambda o: {"pk": o.case.group_id, "action": "annotate"},
        method="post",
        data=lambda o: {"note": "Matrix"},
        expect=CARD_CHANGE,
    ),
    "cases:case": Row(kwargs=lambda o: {"pk": o.case.pk}, expect=CARD_JOURNEY),
    "cases:case_action": Row(
        kwargs=lambda o: {"pk": o.case.pk, "action": "resolve"},
        method="post",
        data=lambda o: {"resolution": "fixed"},
        expect=CARD_CHANGE,
    ),
    "cases:event_annotate": Row(
        kwargs=lambda o: {"pk": o.event_pk},
        method="post",
        data=lambda o: {"note": "Matrix"},
        expect=CARD_CHANGE,
    ),
    "cases:journey_flag": Row(kwargs=journey_pk, method="post", data=lambda o: {"note": "Matrix"}, expect=CARD_CHANGE),
    "cases:labels": Row(expect=VIEWERS),
    "cases:label_edit": Row(
        kwargs=lambda o: {"pk": o.label.pk},
        method="post",
        data=lambda o: {
            f"l{o.label.pk}-name": o.label.name,
            f"l{o.label.pk}-description": "Matrix",
            f"l{o.label.pk}-is_active": "on",
        },
        expect=LABEL_EDITORS_POST,
    ),
    # API tokens and webhooks (console/api_admin.py): admins only.
    "api_tokens": Row(expect=ADMINS_GET),
    "api_token_revoke": Row(kwargs=lambda o: {"pk": o.token.pk}, method="post", expect=ADMINS_POST),
    "webhooks": Row(expect=ADMINS_GET),
    "webhook_detail": Row(kwargs=lambda o: {"pk": o.webhook.pk}, expect=ADMINS_GET),
    "webhook_rotate": Row(kwargs=lambda o: {"pk": o.webhook.pk}, method="post", expect=ADMINS_FORM_POST),
    "webhook_replay": Row(kwargs=lambda o: {"pk": o.delivery.pk}, method="post", expect=ADMINS_POST),
    # Outcome metrics (console/metrics/urls.py).
    "metrics:overview": Row(expect=VIEWERS),
    "metrics:export": Row(expect=VIEWERS),
}

# The other method of URLs that answer both GET and POST (forms and confirmation pages), and
# GET on endpoints that only change things. Walked by the same matrix test.
OTHER_METHODS: list[tuple[str, Row]] = [
    # The confirmation page needs the take-over right: compliance sees the journey, not this page.
    ("journey_take_over", Row(kwargs=journey_pk, expect=per_role(302, 404, 200, 404, 403, 200))),
    ("journey_hand_back", Row(kwargs=controlled_pk, expect=POST_ONLY)),
    ("desk_claim_next", Row(expect=POST_ONLY)),
    ("desk_claim_selected", Row(expect=POST_ONLY)),
    ("journey_assign", Row(kwargs=lambda o: {"pk": o.case.journey_id}, expect=POST_ONLY)),
    ("journey_release", Row(kwargs=controlled_pk, expect=POST_ONLY)),
    ("proposal_withdraw", Row(kwargs=lambda o: {"pk": o.withdrawable.pk}, expect=POST_ONLY)),
    ("agents_stop_button", Row(expect=ADMINS_GET)),
    ("operator_settings", Row(method="post", data=lambda o: {"time_zone": "Europe/Berlin"}, expect=LOGGED_IN_POST)),
    ("review_approve", Row(kwargs=address_update_pk, expect=POST_ONLY)),
    ("review_claim", Row(kwargs=address_update_pk, expect=POST_ONLY)),
    ("review_release_claim", Row(kwargs=address_update_pk, expect=POST_ONLY)),
    ("review_edit", Row(kwargs=address_update_pk, expect=SERVICING_DECIDERS_GET)),
    ("review_scope_create", Row(expect=SCOPE_EDITORS_GET)),
    ("review_scope_edit", Row(kwargs=lambda o: {"pk": o.scope.pk}, expect=SCOPE_EDITORS_GET)),
    ("review_limit_create", Row(expect=SCOPE_EDITORS_GET)),
    ("review_limit_edit", Row(kwargs=lambda o: {"pk": o.limit.pk}, expect=SCOPE_EDITORS_GET)),
    ("review_sample_mark", Row(kwargs=lambda o: {"pk": o.sample.pk}, expect=POST_ONLY)),
    ("governance_approve", Row(kwargs=lambda o: {"pk": o.governance.pk}, expect=POST_ONLY)),
    ("governance_reject", Row(kwargs=lambda o: {"pk": o.governance.pk}, expect=POST_ONLY)),
    (
        "api_tokens",
        Row(
            method="post",
            data=lambda o: {"name": "Matrix", "user": Agent.objects.get(pk=o.agent_pk).user_id, "rate_per_minute": 10},
            expect=ADMINS_FORM_POST,
        ),
    ),
    ("api_token_revoke", Row(kwargs=lambda o: {"pk": o.token.pk}, expect=POST_ONLY)),
    (
        "webhooks",
        Row(
            method="post",
            data=lambda o: {"name": "Matrix", "url": "http://127.0.0.1:9/hook", "events": ["journey.completed"]},
            expect=ADMINS_FORM_POST,
        ),
    ),
    ("webhook_rotate", Row(kwargs=lambda o: {"pk": o.webhook.pk}, expect=POST_ONLY)),
    ("webhook_replay", Row(kwargs=lambda o: {"pk": o.delivery.pk}, expect=POST_ONLY)),
    # The annotation form already needs annotate: compliance is told so at once.
    (
        "cases:event_annotate",
        Row(kwargs=lambda o: {"pk": o.event_pk}, expect=per_role(302, 404, 200, 404, 403, 200)),
    ),
    (
        "cases:labels",
        Row(
            method="post",
            data=lambda o: {"name": "Matrix label"},
            expect=per_role(302, 404, 403, 403, 403, 302),
        ),
    ),
]


def url_names(resolver: URLResolver | None = None, namespace: str = "") -> list[str]:
    """Every URL name reachable from the root resolver; an unnamed pattern is reported too."""
    resolver = resolver or get_resolver()
    names: list[str] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            if entry.namespace and entry.namespace in EXCLUDED_NAMESPACES and not namespace:
                continue
            names.extend(url_names(entry, inner))
        elif isinstance(entry, URLPattern):
            names.append(f"{namespace}{entry.name}" if entry.name else f"<unnamed {entry.pattern}>")
    return names


def test_every_console_url_is_in_the_permission_table():
    missing = sorted(set(url_names()) - set(TABLE))
    assert not missing, f"URL names without an expected status per role: {missing}; add them to TABLE"
    stale = sorted(name for name in set(TABLE) - set(url_names()) if name.split(":")[0] not in EXCLUDED_NAMESPACES)
    assert not stale, f"TABLE lists URL names that no longer exist: {stale}"
    unknown = sorted({name for name, _ in OTHER_METHODS} - set(TABLE))
    assert not unknown, f"OTHER_METHODS lists URL names missing from TABLE: {unknown}"


@pytest.fixture
def objects(demo, agent) -> Objects:
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey.context["facts"] = {"card": "4000111122223333"}
    Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    journey.refresh_from_db()
    User = get_user_model()
    User.objects.get_or_create(username="outsider")
    supervisor = User.objects.get(username="supervisor")

    controlled = journey_start(definition="card_dispute", customer_ref="CUST-00002")
    withdrawable = propose(
        controlled,
        "issue_refund",
        {"account": "ACC-000002", "amount": "120.00", "reason": "provisional credit"},
        agent=agent,
    )
    journey_take_over(journey_id=controlled.pk, user=supervisor)
    controlled.refresh_from_db()

    address = journey_start(definition="address_change", customer_ref="CUST-00003")
    address_update = propose(
        address,
        "update_address",
        {"customer": "CUST-00003", "address": "2 Old Road, Springfield", "recent_changes": True},
        agent=agent,
    )

    message = propose(journey, "send_message", {"customer": journey.customer_ref, "text": "Hi"}, agent=agent)
    sample, _ = ReviewSample.objects.get_or_create(proposal=message)

    failing = journey_start(definition="card_dispute", customer_ref="CUST-00004")
    hand_over(failing, "agent_error", "AgentError: the agent gave up.")

    assert withdrawable.status == ProposedAction.Status.PENDING
    assert address_update.status == ProposedAction.Status.PENDING
    assert message.status == ProposedAction.Status.AUTO_APPROVED
    assert controlled.controller_user == supervisor
    scope = PermissionScope.objects.filter(action_type__key="send_message").get()
    _, governance = rule_toggle_submit(
        model=PermissionScope, pk=scope.pk, enabled=False, actor=User.objects.get(username="admin2"), reason="Matrix"
    )
    admin = User.objects.get(username="admin")
    token, _ = token_create(user=supervisor, name="Matrix token", created_by=supervisor)
    # Port 9 (discard) is closed here: a replay fails fast and is recorded as an attempt.
    webhook, _ = subscription_create(
        name="Matrix hook", url="http://127.0.0.1:9/hook", events=["journey.completed"], agent=None, user=admin
    )
    delivery = WebhookDelivery.objects.create(subscription=webhook, event="journey.completed", source="matrix")
    return Objects(
        journey=journey,
        record=AuditRecord.objects.filter(journey_id=journey.pk).first(),
        cards=Group.objects.get(name="Cards team"),
        agent_pk=agent.pk,
        supervisor_pk=supervisor.pk,
        verification_pk=AuditVerification.objects.create().pk,
        controlled=controlled,
        withdrawable=withdrawable,
        address_update=address_update,
        sample=sample,
        case=ExceptionCase.objects.get(journey=failing),
        event_pk=journey.events.order_by("id").values_list("pk", flat=True).first(),
        scope=scope,
        limit=CumulativeLimit.objects.order_by("pk").first(),
        label=Label.objects.order_by("pk").first(),
        governance=governance,
        token=token,
        webhook=webhook,
        delivery=delivery,
    )


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, objects, role):
    user = None if role == "anonymous" else get_user_model().objects.get(username=role)
    failures = []
    for name, row in [*TABLE.items(), *OTHER_METHODS]:
        with transaction.atomic():
            if user is not None:
                client.force_login(user)
            else:
                client.logout()
            url = reverse(name, kwargs=row.kwargs(objects))
            headers = {"HX-Request": "true"} if row.htmx else {}
            response = getattr(client, row.method)(url, row.data(objects), headers=headers)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            transaction.set_rollback(True)
        if response.status_code != row.expect[role]:
            failures.append(
                f"{name} ({row.method.upper()} {url}): expected {row.expect[role]}, got {response.status_code}"
            )
    assert not failures, f"as {role}:\n" + "\n".join(failures)
