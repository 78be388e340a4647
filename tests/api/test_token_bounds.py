"""What a bearer token can never do: decide anything governed, or reach the console's pages.

A token acts as its user through the API's routes only, and no route approves or rejects a
proposal or a governance change, edits a scope, a limit or a grant, pauses an agent, or issues
tokens or webhooks (docs/api.md, "What a token cannot do")."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from journeys.models import OrganisationGrant
from review.models import GovernanceChange
from review.services.governance import org_grant_submit

from .conftest import auth, make_token

# Every operation the API has: reading and starting journeys, messages, proposals.
EXPECTED = {
    ("post", "/api/v1/journeys"),
    ("get", "/api/v1/journeys/{journey_id}"),
    ("get", "/api/v1/journeys/{journey_id}/events"),
    ("post", "/api/v1/journeys/{journey_id}/messages"),
    ("post", "/api/v1/journeys/{journey_id}/proposals"),
    ("get", "/api/v1/proposals/{proposal_id}"),
}
GOVERNED = re.compile(r"approv|decid|decision|reject|governance|scope|limit|grant|team|pause|stop|token|webhook|admin")


def test_the_api_has_no_route_that_decides_or_governs(client, demo):
    schema = client.get("/api/v1/openapi.json").json()
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert operations == EXPECTED
    assert not [path for _, path in operations if GOVERNED.search(path)]


@pytest.fixture
def pending_org_grant(admin_user) -> GovernanceChange:
    team = Group.objects.get(name="Cards team")
    _, change = org_grant_submit(team=team, rights=[OrganisationGrant.Right.PAUSE], actor=admin_user, reason="Night")
    return change


def test_a_superusers_token_cannot_approve_a_governance_change_or_grant_rights(client, admin2, pending_org_grant):
    """Even a token acting as the second admin is no second admin: the console's pages take no
    bearer token, so the forged POSTs below are anonymous and change nothing."""
    headers = auth(make_token(admin2, admin2))
    team = Group.objects.get(name="Cards team")

    approve = client.post(reverse("governance_approve", args=[pending_org_grant.pk]), {"reason": "ok"}, headers=headers)
    assert approve.status_code == 302 and reverse("login") in approve["Location"]
    pending_org_grant.refresh_from_db()
    assert pending_org_grant.status == GovernanceChange.Status.PENDING

    widen = client.post(
        reverse("team_org_rights", args=[team.pk]), {"org:audit": "on", "reason": "token"}, headers=headers
    )
    assert widen.status_code == 302 and reverse("login") in widen["Location"]
    grants = client.post(reverse("team_grants", args=[team.pk]), {}, headers=headers)
    assert grants.status_code == 302 and reverse("login") in grants["Location"]
    issued = client.post(reverse("api_tokens"), {"name": "more", "user": admin2.pk}, headers=headers)
    assert issued.status_code == 302 and reverse("login") in issued["Location"]
    assert not team.organisation_grants.exists()
    assert GovernanceChange.objects.count() == 1
