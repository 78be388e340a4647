"""Security baseline: deploy checks, CSP, CSRF on htmx posts, login throttling, guardian traps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory
from django.urls import reverse
from guardian.shortcuts import assign_perm

from journeys.access import definitions_for, get_journey_for_user, journeys_for
from journeys.models import JourneyDefinition
from journeys.services import journey_start
from review.audit.request_meta import client_ip
from review.models import AuditRecord

ROOT = Path(settings.BASE_DIR)

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-for-the-deploy-check-" + "x7Qp" * 12,
    "AUDIT_SIGNING_KEY": "audit-k3y-for-the-deploy-check-" + "r9Tz" * 8,
    "ALLOWED_HOSTS": "handoff.bank.example",
    "CSRF_TRUSTED_ORIGINS": "https://handoff.bank.example",
    "SECURE_COOKIES": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "BEHIND_TLS_PROXY": "true",
    # Handoff's own deploy checks (console/checks.py): no demo, a real adapter, a signing key.
    "HANDOFF_DEMO": "false",
    "HANDOFF_CORE_BANK": "tests.own_core_bank.OwnCoreBank",
}


def _check_deploy(extra: dict[str, str]) -> subprocess.CompletedProcess:
    # The browser fixture sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; production never would.
    # Production is not the demo: the suite's HANDOFF_DEMO must not leak in either.
    dropped = {"DJANGO_ALLOW_ASYNC_UNSAFE", "HANDOFF_DEMO"}
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k not in dropped}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_complains_when_cookies_are_not_secure():
    result = _check_deploy({**PRODUCTION_ENV, "SECURE_COOKIES": "false"})
    assert result.returncode != 0
    assert "security.W012" in result.stdout + result.stderr


INLINE = [
    (re.compile(r"<[^>]*\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"<[^>]*\sstyle\s*=", re.I), "inline style attribute"),
    (re.compile(r"<style[\s>]", re.I), "inline <style> element"),
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "inline <script> without src"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_needs_unsafe_inline():
    offences = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                offences.append(f"{template.relative_to(ROOT)}: {what}: {match.group(0)[:60]}")
    assert not offences, "\n".join(offences)


def test_csp_header_has_no_unsafe_inline(client, compliance):
    client.force_login(compliance)
    header = client.get(reverse("audit:search")).headers["Content-Security-Policy"]
    assert "unsafe-inline" not in header
    assert "script-src 'self' 'nonce-" in header


def test_an_htmx_post_without_the_csrf_token_is_refused(compliance):
    client = Client(enforce_csrf_checks=True)
    client.force_login(compliance)
    refused = client.post(reverse("audit:verify_start"), headers={"HX-Request": "true"})
    assert refused.status_code == 403
    page = client.get(reverse("audit:verify"))
    token = page.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = client.post(reverse("audit:verify_start"), headers={"HX-Request": "true", "X-CSRFToken": token})
    assert accepted.status_code == 200


def test_base_layout_sends_the_csrf_token_on_every_htmx_request(client, compliance):
    client.force_login(compliance)
    body = client.get(reverse("audit:search")).text
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'>", body)


# --- login throttling -----------------------------------------------------------------------


def _login(client: Client, password: str, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(reverse("login"), {"username": "supervisor", "password": password}, headers=headers)


def test_repeated_failed_logins_lock_the_account_and_are_audited(client, supervisor):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "wrong").status_code == 200  # the form again, with an error
    assert _login(client, "wrong").status_code == 429  # the last allowed failure locks
    locked = _login(client, "demo")  # even the right password is refused now
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert AuditRecord.objects.filter(kind="login_failed", actor_label="supervisor").count() >= 5
    lockout = AuditRecord.objects.filter(kind="login_lockout").first()  # one per refused attempt
    assert lockout.payload["username"] == "supervisor"
    assert "wrong" not in str(AuditRecord.objects.filter(kind="login_failed").values_list("payload", flat=True))


def test_a_spoofed_x_forwarded_for_does_not_escape_the_lockout(client, supervisor):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "wrong", forwarded_for=f"203.0.113.{attempt}")
    assert _login(client, "demo", forwarded_for="198.51.100.77").status_code == 429


def test_the_forwarded_address_is_trusted_only_behind_a_known_number_of_proxies(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.10")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.5"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "192.0.2.10"  # what our proxy saw, not what the client claimed
    settings.TRUSTED_PROXY_COUNT = 3
    assert client_ip(request) == "10.0.0.5"  # fewer hops than proxies: the header is not ours


# --- django-guardian's traps ----------------------------------------------------------------


def test_a_model_wide_permission_does_not_open_every_definition(outsider):
    outsider.user_permissions.add(Permission.objects.get(codename="view_journeys"))
    outsider = get_user_model().objects.get(pk=outsider.pk)  # drop the permission cache
    assert outsider.has_perm("journeys.view_journeys")  # Django says yes model-wide…
    assert not definitions_for(outsider).exists()  # …the console still shows nothing


def test_an_inactive_user_sees_nothing_even_with_grants(client, supervisor):
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    supervisor.is_active = False
    supervisor.save()
    assert not definitions_for(supervisor).exists()
    assert not journeys_for(supervisor).exists()
    with pytest.raises(Exception, match="No such journey"):
        get_journey_for_user(supervisor, journey.pk)
    client.force_login(supervisor)
    assert client.get(reverse("journey_detail", args=[journey.pk])).status_code == 302  # logged out


def test_grants_on_a_deleted_definition_do_not_pass_to_a_new_one_reusing_its_id(supervisor):
    team = Group.objects.get(name="Cards team")
    old = JourneyDefinition.objects.create(key="temporary", name="Temporary journey")
    assign_perm("journeys.view_journeys", team, old)
    assert definitions_for(supervisor).filter(pk=old.pk).exists()
    reused_id = old.pk
    old.delete()
    new = JourneyDefinition.objects.create(pk=reused_id, key="unrelated", name="Unrelated journey")
    assert not definitions_for(supervisor).filter(pk=new.pk).exists()
