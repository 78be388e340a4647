"""The console shell: login, landing, the journey list and the journey page, per role."""

from __future__ import annotations

import pytest
from django.urls import reverse

from journeys.models import Journey
from journeys.services import journey_start


@pytest.fixture
def journeys(agent) -> dict[str, Journey]:
    return {
        "dispute": journey_start(
            definition="card_dispute",
            customer_ref="CUST-00001",
            message="I don't know this charge",
            request={"merchant": "Metro Rail"},
        ),
        "refund": journey_start(definition="fee_refund", customer_ref="CUST-00002", message="Why this fee?"),
    }


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("journey_list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_login_with_a_wrong_password_shows_an_error(client, supervisor):
    response = client.post(reverse("login"), {"username": "supervisor", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_each_demo_user_lands_somewhere_useful(client, supervisor, supervisor2, compliance, admin_user, outsider):
    expected = {supervisor: "board", supervisor2: "board", compliance: "audit:search", admin_user: "review_scopes"}
    for user, url_name in expected.items():
        client.force_login(user)
        landing = client.get(reverse("home"), follow=True)
        assert landing.status_code == 200
        assert landing.redirect_chain[-1][0] == reverse(url_name)
    client.force_login(outsider)
    assert client.get(reverse("home")).url == reverse("no_access")


def test_supervisor_lists_only_their_teams_journeys(client, supervisor, journeys):
    client.force_login(supervisor)
    page = client.get(reverse("journey_list")).content.decode()
    assert f"J-{journeys['dispute'].pk}" in page
    assert f"J-{journeys['refund'].pk}" not in page


def test_journey_list_filters_by_definition_and_status(client, compliance, journeys):
    client.force_login(compliance)
    page = client.get(reverse("journey_list"), {"definition": "fee_refund", "status": "live"}).content.decode()
    assert f"J-{journeys['refund'].pk}" in page and f"J-{journeys['dispute'].pk}" not in page
    page = client.get(reverse("journey_list"), {"status": "completed"}).content.decode()
    assert "No journeys match" in page


def test_journey_list_rejects_a_bad_filter_with_a_message(client, compliance, journeys):
    client.force_login(compliance)
    response = client.get(reverse("journey_list"), {"definition": "no-such-thing"})
    assert response.status_code == 200
    assert "Definition: “no-such-thing” is not one of the choices you may see" in response.content.decode()


def test_journey_list_htmx_request_renders_only_the_rows(client, compliance, journeys):
    client.force_login(compliance)
    response = client.get(reverse("journey_list"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="journey-rows">')
    assert "<html" not in body


def test_journey_page_shows_the_timeline_newest_first(client, supervisor, journeys):
    client.force_login(supervisor)
    journey = journeys["dispute"]
    body = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert "Card dispute" in body and "Verify identity" in body
    assert body.index("Step “Verify identity” started") < body.index("Card dispute started on")
    assert "I don&#x27;t know this charge" in body or "I don't know this charge" in body


@pytest.mark.parametrize("who", ["supervisor2", "outsider"])
def test_foreign_team_gets_404_for_a_journey(client, journeys, who, request):
    user = request.getfixturevalue(who)
    client.force_login(user)
    assert client.get(reverse("journey_detail", args=[journeys["dispute"].pk])).status_code == 404
    assert client.get(reverse("journey_timeline", args=[journeys["dispute"].pk])).status_code == 404


def test_inactive_users_see_nothing(client, supervisor, journeys):
    supervisor.is_active = False
    supervisor.save()
    from journeys.access import journeys_for

    assert not journeys_for(supervisor).exists()


def test_model_wide_permission_does_not_open_every_journey(supervisor2, journeys):
    from django.contrib.auth.models import Permission

    from journeys.access import journeys_for

    supervisor2.user_permissions.add(Permission.objects.get(codename="view_journeys"))
    visible = set(journeys_for(supervisor2).values_list("pk", flat=True))
    assert journeys["dispute"].pk not in visible
