"""An admin creates a token, watches its calls in the audit trail and revokes it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from api.models import ApiToken
from journeys.models import Agent

from .conftest import auth

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_creates_watches_and_revokes_a_token(admin_user):
    console = logged_in(admin_user)
    agent = Agent.objects.get(name="External agent")
    page = console.post("/api-tokens/", {"name": "Partner bot", "user": agent.user.pk, "rate_per_minute": 50})
    assert page.status_code == 200
    raw = re.search(r'<code id="new-token">(hnd_[A-Za-z0-9_-]+)</code>', page.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert token.rate_per_minute == 50 and token.created_by == admin_user and raw.startswith(f"hnd_{token.prefix}_")
    # Shown once: the list never shows it again.
    assert raw not in console.get("/api-tokens/").content.decode()

    api = Client()
    assert (
        api.post(
            "/api/v1/journeys",
            data={"definition": "fee_refund", "customer_ref": "CUST-00003"},
            content_type="application/json",
            headers=auth(raw),
        ).status_code
        == 201
    )
    assert api.get("/api/v1/journeys/424242", headers=auth(raw)).status_code == 404

    listing = console.get("/api-tokens/").content.decode()
    assert "never" not in listing.split(f"token-{token.pk}")[1].split("</tr>")[0]  # last used is shown
    trail = console.get("/audit/", {"actor": "External agent", "kind": "api_call"}).content.decode()
    assert "POST /api/v1/journeys → 201" in trail and "GET /api/v1/journeys/424242 → 404" in trail

    assert console.post(f"/api-tokens/{token.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/journeys/424242", headers=auth(raw)).status_code == 401
    token.refresh_from_db()
    assert token.revoked_by == admin_user
    governance = console.get("/audit/", {"actor": "admin"}).content.decode()
    assert "API token" in governance


def test_token_form_errors_are_form_errors(admin_user):
    console = logged_in(admin_user)
    page = console.post("/api-tokens/", {"name": "", "user": "nobody", "rate_per_minute": "-4"})
    assert page.status_code == 400 and not ApiToken.objects.exists()


def test_inactive_user_cannot_get_a_token_and_deactivating_kills_live_ones(admin_user, supervisor):
    from api.tokens import TokenError, token_create

    _, raw = token_create(user=supervisor, name="mine", created_by=supervisor)
    supervisor.is_active = False
    supervisor.save()
    assert Client().get("/api/v1/journeys/1", headers=auth(raw)).status_code == 401
    with pytest.raises(TokenError):
        token_create(user=supervisor, name="again", created_by=supervisor)


def test_revoking_twice_says_so(admin_user, supervisor):
    from api.tokens import token_create

    token, _ = token_create(user=supervisor, name="mine", created_by=supervisor)
    console = logged_in(admin_user)
    console.post(f"/api-tokens/{token.pk}/revoke/")
    page = console.post(f"/api-tokens/{token.pk}/revoke/", follow=True)
    assert "already revoked" in page.content.decode()


def test_a_persons_token_is_issued_only_by_that_person(admin_user, supervisor):
    """Whoever holds a person's token acts as that person: an admin holding a supervisor's token
    could propose as the supervisor and approve the proposal as themselves (four eyes, one person)."""
    from api.tokens import TokenError, token_create

    with pytest.raises(TokenError, match="issued only by that person"):
        token_create(user=supervisor, name="for the supervisor", created_by=admin_user)
    # The form offers agents' service users and the admin, not other people; a forged POST is refused.
    console = logged_in(admin_user)
    page = console.get("/api-tokens/").content.decode()
    assert f'value="{supervisor.pk}"' not in page and f'value="{admin_user.pk}"' in page
    forged = console.post("/api-tokens/", {"name": "for the supervisor", "user": supervisor.pk, "rate_per_minute": 60})
    assert forged.status_code == 400 and not ApiToken.objects.filter(user=supervisor).exists()
    # An admin's own token, and an agent's, are issued as before.
    agent = Agent.objects.get(name="External agent")
    for user in (admin_user, agent.user):
        made = console.post("/api-tokens/", {"name": "ok", "user": user.pk, "rate_per_minute": 60})
        assert made.status_code == 200 and ApiToken.objects.filter(user=user).exists()
