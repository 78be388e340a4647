"""Side doors around the console: the Django admin, implied organisation-wide rights, demo keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm

from journeys.control import agents_pause, may_pause
from journeys.models import JourneyDefinition, OrganisationGrant
from review.audit.access import may_audit_everything, records_for
from review.audit.chain import governance_append
from review.models import AuditRecord

ROOT = Path(__file__).resolve().parents[2]


# --- the Django admin -------------------------------------------------------------------------


@pytest.fixture
def nosy_staff(demo):
    """A staff user holding every model-wide view permission Django has."""
    user = get_user_model().objects.create_user("nosy", password="demo", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.mark.parametrize(
    "model",
    ["journey", "event", "proposedaction", "corecustomer", "coreaccount", "corecard", "coretransaction", "corecase"],
)
def test_the_admin_shows_no_journey_or_customer_data(client, nosy_staff, model):
    client.force_login(nosy_staff)
    assert client.get(f"/admin/journeys/{model}/").status_code == 404
    index = client.get(reverse("admin:index")).content.decode()
    assert f"/admin/journeys/{model}/" not in index


def test_the_admin_still_configures_definitions_and_agents(client, nosy_staff):
    client.force_login(nosy_staff)
    assert client.get("/admin/journeys/journeydefinition/").status_code == 200
    assert client.get("/admin/journeys/agent/").status_code == 200


def test_no_registered_admin_page_lists_journeys_or_customers():
    from django.contrib import admin

    from demo.models import CoreAccount, CoreCard, CoreCustomer
    from journeys.models import Event, Journey, ProposedAction

    registered = set(admin.site._registry)
    assert not registered & {Journey, Event, ProposedAction, CoreCustomer, CoreAccount, CoreCard}


def test_the_admin_cannot_add_or_change_organisation_wide_grants(client, admin_user):
    """Organisation-wide rights are granted under maker-checker on the team's page; a forged POST
    to the admin's add or change page, even by a superuser, grants nothing."""
    cards = Group.objects.get(name="Cards team")
    admins = Group.objects.get(name="Admins")
    grant = OrganisationGrant.objects.filter(team=admins).first()
    client.force_login(admin_user)
    base = "/admin/journeys/organisationgrant/"
    assert client.get(base).status_code == 200  # still readable

    added = client.post(base + "add/", {"team": cards.pk, "right": OrganisationGrant.Right.PAUSE})
    assert added.status_code == 403
    changed = client.post(f"{base}{grant.pk}/change/", {"team": cards.pk, "right": grant.right})
    assert changed.status_code in (200, 403)
    deleted = client.post(f"{base}{grant.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    grant.refresh_from_db()
    assert grant.team == admins
    assert not cards.organisation_grants.exists()
    assert "Add organisation grant" not in client.get(base).content.decode()


def test_the_admin_cannot_change_teams_superusers_or_object_permissions(client, admin_user, supervisor):
    """Joining a team, a superuser flag or a model permission would widen rights outside the
    Teams page's maker-checker: the admin's forged POSTs change none of them."""
    admins = Group.objects.get(name="Admins")
    client.force_login(admin_user)
    definition = JourneyDefinition.objects.first()
    assert client.get(f"/admin/journeys/journeydefinition/{definition.pk}/permissions/").status_code in (302, 404)

    page = f"/admin/auth/user/{supervisor.pk}/change/"
    assert client.get(page).status_code == 200
    change_perm = Permission.objects.get(codename="change_group")
    response = client.post(
        page,
        {
            "username": "supervisor",
            "first_name": "Forged",
            "last_name": supervisor.last_name,
            "email": supervisor.email,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [admins.pk],
            "user_permissions": [change_perm.pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302  # the editable fields saved, the others ignored
    supervisor.refresh_from_db()
    assert supervisor.first_name == "Forged"
    assert not supervisor.is_superuser and not supervisor.groups.filter(pk=admins.pk).exists()
    assert not supervisor.user_permissions.exists()
    assert not may_pause(supervisor, None)

    group_page = f"/admin/auth/group/{admins.pk}/change/"
    client.post(group_page, {"name": "Admins", "permissions": [change_perm.pk]})
    assert client.post("/admin/auth/group/add/", {"name": "Sneaky"}).status_code == 403
    assert not admins.permissions.exists() and not Group.objects.filter(name="Sneaky").exists()


# --- organisation-wide rights ---------------------------------------------------------------


@pytest.fixture
def almost_everywhere(demo):
    """A team holding audit and pause on every definition but one (which is then deleted)."""
    team = Group.objects.create(name="Almost everywhere")
    user = get_user_model().objects.create_user("almost", password="demo")
    user.groups.add(team)
    extra = JourneyDefinition.objects.create(key="doomed", name="Doomed definition")
    for definition in JourneyDefinition.objects.exclude(pk=extra.pk):
        assign_perm("journeys.audit", team, definition)
        assign_perm("journeys.pause_agents", team, definition)
    return team, user, extra


def test_deleting_the_one_missing_definition_does_not_widen_rights(almost_everywhere):
    _team, user, extra = almost_everywhere
    governance_append(kind="login_failed", summary="Failed login for mallory")
    assert not may_audit_everything(user) and not may_pause(user, None)
    extra.delete()
    assert not may_audit_everything(user)
    assert not may_pause(user, None)
    assert not records_for(user).filter(kind="login_failed").exists()
    with pytest.raises(Exception, match="may not pause all agents"):
        agents_pause(user=user, definition=None, reason="should not be allowed")


def test_organisation_wide_rights_come_from_an_explicit_grant_which_is_audited(almost_everywhere):
    team, user, _extra = almost_everywhere
    OrganisationGrant.objects.create(team=team, right=OrganisationGrant.Right.AUDIT)
    assert may_audit_everything(user) and not may_pause(user, None)
    OrganisationGrant.objects.create(team=team, right=OrganisationGrant.Right.PAUSE)
    assert may_pause(user, None)
    granted = AuditRecord.objects.filter(kind="grant_added", summary__contains="of team Almost everywhere")
    assert granted.count() == 2


def test_the_demo_gives_compliance_and_admins_their_organisation_wide_rights(
    client, compliance, admin_user, supervisor
):
    client.force_login(admin_user)
    page = client.get(reverse("team_detail", args=[Group.objects.get(name="Admins").pk])).content.decode()
    assert "Pause every agent at once" in page and "Audit organisation-wide records" in page
    assert may_audit_everything(compliance) and not may_pause(compliance, None)
    assert may_audit_everything(admin_user) and may_pause(admin_user, None)
    assert not may_audit_everything(supervisor)


# --- keys outside the demo --------------------------------------------------------------------


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # As a fresh production shell would have it (the browser fixture sets the async flag).
    dropped = {"SECRET_KEY", "AUDIT_SIGNING_KEY", "HANDOFF_DEMO", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, "DATABASE_URL": os.environ["DATABASE_URL"], **env},
        timeout=120,
    )


def test_a_missing_secret_key_outside_the_demo_stops_start_up_and_says_how_to_set_it():
    result = _manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr and "export SECRET_KEY=" in result.stderr


def test_a_missing_audit_signing_key_outside_the_demo_stops_start_up():
    result = _manage("check", SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "AUDIT_SIGNING_KEY is not set" in result.stderr


def test_check_deploy_flags_the_demo_keys_and_passes_with_real_ones():
    production = {
        "SECURE_COOKIES": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "ALLOWED_HOSTS": "handoff.bank.example",
    }
    demo = _manage("check", "--deploy", HANDOFF_DEMO="true", **production)
    assert demo.returncode != 0
    assert "handoff.E001" in demo.stderr and "handoff.E002" in demo.stderr
    real = _manage(
        "check",
        "--deploy",
        SECRET_KEY="k" * 20 + "Zq8-x_" * 10,
        AUDIT_SIGNING_KEY="a" * 48,
        HANDOFF_CORE_BANK="tests.own_core_bank.OwnCoreBank",  # a bank's own adapter, not the demo's
        **production,
    )
    assert "handoff.E00" not in real.stderr + real.stdout
    assert real.returncode == 0, real.stderr
