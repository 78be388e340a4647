"""Menus and pages agree: a page is reachable by a role exactly when it is in that role's menu;
403 and 404 pages keep the layout and the navigation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from console.navigation import NAV, items_for
from journeys.services import journey_start

ROLES = ["outsider", "supervisor", "supervisor2", "compliance", "admin", "lead"]


@pytest.mark.parametrize("username", ROLES)
def test_each_menu_page_is_reachable_exactly_when_it_is_in_the_menu(client, demo, outsider, username):
    user = get_user_model().objects.get(username=username)
    client.force_login(user)
    in_menu = {item.url_name for item in items_for(user)}
    wrong = []
    for item in NAV:
        status = client.get(reverse(item.url_name)).status_code
        expected = 200 if item.url_name in in_menu else 404
        if item.url_name == "admin:index" and item.url_name not in in_menu:
            expected = 302  # Django's admin sends non-staff to its own login
        if status != expected:
            wrong.append(f"{item.url_name}: in menu={item.url_name in in_menu}, got {status}")
    assert not wrong, f"as {username}: " + "; ".join(wrong)


def test_the_lead_no_longer_reaches_the_board_journeys_or_samples(client, demo):
    client.force_login(get_user_model().objects.get(username="lead"))
    for name in ("board", "journey_list", "review_samples"):
        assert client.get(reverse(name)).status_code == 404, name
    assert client.get(reverse("review_queue")).status_code == 200


def test_compliance_has_no_approval_queue_and_no_approve_button(client, compliance):
    client.force_login(compliance)
    response = client.get(reverse("review_queue"))
    assert response.status_code == 404
    assert "Approve selected" not in response.content.decode()


def test_a_404_keeps_the_layout_and_the_menu(client, supervisor):
    journey = journey_start(definition="fee_refund", customer_ref="CUST-00002")  # the Servicing team's
    client.force_login(supervisor)
    for url in ("/no-such-page/", reverse("journey_detail", args=[journey.pk])):
        response = client.get(url)
        assert response.status_code == 404
        page = response.content.decode()
        assert 'class="mainnav"' in page and 'href="/board/"' in page
        assert "Not found" in page and "Times in" in page


def test_a_403_keeps_the_layout_and_names_the_missing_right(client, compliance):
    client.force_login(compliance)
    response = client.get(reverse("review_scope_create"))
    assert response.status_code == 403
    page = response.content.decode()
    assert 'class="mainnav"' in page
    assert "Only admins change permission scopes." in page


def test_an_expired_csrf_token_gets_a_page_in_words(demo):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="supervisor"))
    response = client.post(reverse("operator_settings"), {"time_zone": "UTC"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
