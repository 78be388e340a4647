"""Every URL the console has, with every demo role and a foreign-team user.

The table below is the contract: the expected status of each URL name for each role. The test
walks Django's resolver and FAILS on a URL name missing from the table, so a new page cannot
ship without saying who may use it. Each request runs in a savepoint that is rolled back, so
state-changing POSTs do not leak into the next request.
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

from journeys.models import Journey
from journeys.services import journey_start
from review.models import AuditRecord, AuditVerification

ROLES = ["anonymous", "outsider", "supervisor", "supervisor2", "compliance", "admin"]

# Namespaces left out of the table, each with its reason.
EXCLUDED_NAMESPACES = {
    "admin": "Django's own admin: every page requires is_staff; its index is in the table",
}


@dataclass
class Objects:
    journey: Journey  # a card dispute: Cards team's, foreign to the Servicing team
    record: AuditRecord
    cards: Group
    agent_pk: int
    supervisor_pk: int
    verification_pk: int


@dataclass
class Row:
    kwargs: Callable[[Objects], dict[str, Any]] = lambda o: {}
    method: str = "get"
    data: Callable[[Objects], dict[str, Any]] = lambda o: {}
    expect: dict[str, int] = field(default_factory=dict)
    htmx: bool = False


def per_role(
    anonymous: int, outsider: int, supervisor: int, supervisor2: int, compliance: int, admin: int
) -> dict[str, int]:
    return dict(
        zip(ROLES, [anonymous, outsider, supervisor, supervisor2, compliance, admin], strict=True)
    )


LOGGED_IN_OK = per_role(302, 200, 200, 200, 200, 200)
CARD_JOURNEY = per_role(302, 404, 200, 404, 200, 200)  # supervisor2 is the foreign team
AUDITORS = per_role(302, 404, 404, 404, 200, 200)
ADMINS_GET = per_role(302, 404, 404, 404, 404, 200)
ADMINS_POST = per_role(302, 404, 404, 404, 404, 302)
UNMASKERS = per_role(302, 404, 200, 404, 200, 200)

journey_pk = lambda o: {"pk": o.journey.pk}  # noqa: E731

TABLE: dict[str, Row] = {
    "home": Row(expect=per_role(302, 302, 302, 302, 302, 302)),
    "login": Row(expect=per_role(200, 302, 302, 302, 302, 302)),
    "logout": Row(method="post", expect=per_role(302, 302, 302, 302, 302, 302)),
    "no_access": Row(expect=LOGGED_IN_OK),
    "healthz": Row(expect=per_role(200, 200, 200, 200, 200, 200)),
    "journey_list": Row(expect=LOGGED_IN_OK),
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
    "audit:verify_progress": Row(
        kwargs=lambda o: {"pk": o.verification_pk}, expect=AUDITORS, htmx=True
    ),
    "team_list": Row(expect=ADMINS_GET),
    "team_create": Row(method="post", data=lambda o: {"name": "Matrix team"}, expect=ADMINS_POST),
    "team_detail": Row(kwargs=lambda o: {"pk": o.cards.pk}, expect=ADMINS_GET),
    "team_grants": Row(kwargs=lambda o: {"pk": o.cards.pk}, method="post", expect=ADMINS_POST),
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
}


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
    assert not missing, (
        f"URL names without an expected status per role: {missing}; add them to TABLE"
    )
    stale = sorted(
        name
        for name in set(TABLE) - set(url_names())
        if name.split(":")[0] not in EXCLUDED_NAMESPACES
    )
    assert not stale, f"TABLE lists URL names that no longer exist: {stale}"


@pytest.fixture
def objects(demo, agent) -> Objects:
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey.context["facts"] = {"card": "4000111122223333"}
    Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    journey.refresh_from_db()
    User = get_user_model()
    User.objects.get_or_create(username="outsider")
    return Objects(
        journey=journey,
        record=AuditRecord.objects.filter(journey_id=journey.pk).first(),
        cards=Group.objects.get(name="Cards team"),
        agent_pk=agent.pk,
        supervisor_pk=User.objects.get(username="supervisor").pk,
        verification_pk=AuditVerification.objects.create().pk,
    )


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, objects, role):
    user = None if role == "anonymous" else get_user_model().objects.get(username=role)
    failures = []
    for name, row in TABLE.items():
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
                f"{name} ({row.method.upper()} {url}): expected {row.expect[role]}, "
                f"got {response.status_code}"
            )
    assert not failures, f"as {role}:\n" + "\n".join(failures)
