"""Times in the operator's time zone: chosen, else the browser's, else the server's; always named."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from console.models import OperatorSettings
from console.templatetags.console_tags import display_value, local_time
from console.timezones import COOKIE
from journeys.services import journey_start

LOST_AT = "2026-03-01T22:30:00+00:00"


@pytest.fixture
def lost_card(agent):
    return journey_start(
        definition="lost_card",
        customer_ref="CUST-00006",
        message="My card is gone",
        request={"reason": "lost", "lost_at": LOST_AT},
    )


def test_iso_strings_in_payloads_are_shown_as_local_times_with_the_zone():
    with timezone.override("Asia/Tokyo"):
        assert display_value(LOST_AT) == "2026-03-02 07:30 JST"
        assert local_time(datetime(2026, 3, 1, 22, 30, tzinfo=UTC)) == "2026-03-02 07:30 JST"
        assert display_value({"lost_at": LOST_AT}) == "lost at: 2026-03-02 07:30 JST"
    # Not a time: left alone, and a malformed one never raises.
    assert display_value("2026-13-45T99:99") == "2026-13-45T99:99"
    assert display_value("2026-03-01") == "2026-03-01"


def test_the_browser_zone_from_the_cookie_is_used_and_named(client, supervisor, lost_card):
    client.force_login(supervisor)
    client.cookies[COOKIE] = "America/New_York"
    page = client.get(reverse("journey_detail", args=[lost_card.pk])).content.decode()
    assert "Times in America/New_York" in page
    assert "2026-03-01 17:30 EST" in page  # "Lost at", in the operator's zone
    assert LOST_AT not in page.replace(f'datetime="{LOST_AT}"', "")


@pytest.mark.parametrize("cookie", ["Mars/Olympus_Mons", "../../etc/passwd", "x" * 500, ""])
def test_a_forged_zone_cookie_falls_back_to_the_server_zone(client, supervisor, cookie):
    client.force_login(supervisor)
    client.cookies[COOKIE] = cookie
    response = client.get(reverse("journey_list"))
    assert response.status_code == 200
    assert "Times in UTC" in response.content.decode()


def test_a_chosen_zone_wins_over_the_browser_and_survives_a_new_login(client, supervisor):
    client.force_login(supervisor)
    client.cookies[COOKIE] = "America/New_York"
    response = client.post(reverse("operator_settings"), {"time_zone": "Europe/Berlin"}, follow=True)
    assert "Times are now shown in Europe/Berlin" in response.content.decode()
    assert OperatorSettings.objects.get(user=supervisor).time_zone == "Europe/Berlin"
    client.logout()
    client.cookies[COOKIE] = "America/New_York"
    assert client.post(reverse("login"), {"username": "supervisor", "password": "demo"}).status_code == 302
    assert "Times in Europe/Berlin" in client.get(reverse("journey_list")).content.decode()
    # Back to the browser's zone.
    client.post(reverse("operator_settings"), {"time_zone": ""})
    assert "Times in America/New_York" in client.get(reverse("journey_list")).content.decode()


def test_an_unknown_zone_is_a_form_error(client, supervisor):
    client.force_login(supervisor)
    response = client.post(reverse("operator_settings"), {"time_zone": "Europe/Atlantis"})
    assert response.status_code == 200
    assert "Choose a time zone from the list." in response.content.decode()
    assert not OperatorSettings.objects.filter(user=supervisor).exists()


@pytest.mark.browser
def test_a_browser_in_tokyo_sees_tokyo_times_and_can_choose_another_zone(browser, live_server, supervisor, lost_card):
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/login/")
        page.fill("input[name=username]", "supervisor")
        page.fill("input[name=password]", "demo")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"/journeys/{lost_card.pk}/")
        assert page.get_by_role("link", name="Times in Asia/Tokyo").is_visible()
        assert "2026-03-02 07:30 JST" in page.locator("main").inner_text()
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", page.locator("body").inner_text())
        page.get_by_role("link", name="Times in Asia/Tokyo").click()
        page.get_by_label("Time zone").select_option("Europe/London")
        page.get_by_role("button", name="Save").click()
        assert page.get_by_role("link", name="Times in Europe/London").is_visible()
        page.goto(f"/journeys/{lost_card.pk}/")
        assert "2026-03-01 22:30 GMT" in page.locator("main").inner_text()
    finally:
        context.close()
