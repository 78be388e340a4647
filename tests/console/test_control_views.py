"""The journey page's controls and the stop button page, as allowed, read-only and foreign users."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from journeys.control import journey_take_over
from journeys.models import AgentPause, Event, Journey, ProposedAction
from journeys.services import journey_start

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def journey(demo) -> Journey:
    return journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def _taken(journey: Journey, user) -> Journey:
    return journey_take_over(journey_id=journey.pk, user=user)


def test_the_journey_page_offers_take_over_to_a_supervisor_of_the_team(as_user, supervisor, journey):
    page = as_user(supervisor).get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert 'id="take-over"' in page
    assert "hx-confirm=" in page
    assert "Pending proposals" in page


def test_a_read_only_user_sees_the_journey_without_controls(as_user, compliance, journey):
    page = as_user(compliance).get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert 'id="take-over"' not in page and "message-form" not in page
    assert "You may view this journey but not take it over" in page


def test_take_over_asks_for_confirmation_first(as_user, supervisor, journey):
    response = as_user(supervisor).get(reverse("journey_take_over", args=[journey.pk]))
    assert response.status_code == 200
    assert "Take over J-" in response.content.decode()
    assert Journey.objects.get(pk=journey.pk).controller_user is None


def test_a_supervisor_takes_over_and_gets_the_control_forms(as_user, supervisor, journey):
    client = as_user(supervisor)
    response = client.post(reverse("journey_take_over", args=[journey.pk]))
    assert response.status_code == 302
    assert Journey.objects.get(pk=journey.pk).controller_user == supervisor
    page = client.get(response.url).content.decode()
    assert "You are in control" in page and 'id="message-form"' in page and 'id="hand-back-form"' in page


def test_an_htmx_take_over_redirects_the_browser(as_user, supervisor, journey):
    response = as_user(supervisor).post(reverse("journey_take_over", args=[journey.pk]), **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("journey_detail", args=[journey.pk])


def test_the_loser_of_a_takeover_is_told_who_has_it(as_user, supervisor, admin_user, journey):
    from django.contrib.auth.models import Group, User

    colleague = User.objects.create_user("colleague", password="x")
    colleague.groups.add(Group.objects.get(name="Cards team"))
    _taken(journey, colleague)
    client = as_user(supervisor)
    response = client.post(reverse("journey_take_over", args=[journey.pk]), follow=True)
    assert "colleague took over" in response.content.decode()


def test_read_only_and_foreign_users_cannot_take_over(as_user, compliance, supervisor2, journey):
    assert as_user(compliance).post(reverse("journey_take_over", args=[journey.pk])).status_code == 403
    assert as_user(supervisor2).post(reverse("journey_take_over", args=[journey.pk])).status_code == 404
    assert as_user(supervisor2).get(reverse("journey_detail", args=[journey.pk])).status_code == 404
    assert Journey.objects.get(pk=journey.pk).controller_user is None


def test_the_person_in_control_messages_the_customer(as_user, supervisor, journey):
    _taken(journey, supervisor)
    client = as_user(supervisor)
    response = client.post(reverse("journey_send_message", args=[journey.pk]), {"text": "On it.", "key": "ab12"})
    assert response.status_code == 302
    event = Event.objects.get(journey=journey, kind=Event.Kind.MESSAGE_OUT)
    assert event.summary == "On it." and event.actor_user == supervisor


def test_an_empty_message_is_a_form_error(as_user, supervisor, journey):
    _taken(journey, supervisor)
    response = as_user(supervisor).post(reverse("journey_send_message", args=[journey.pk]), {"text": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


def test_a_proposal_with_bad_params_is_a_form_error(as_user, supervisor, journey):
    _taken(journey, supervisor)
    client = as_user(supervisor)
    url = reverse("journey_propose", args=[journey.pk])
    response = client.post(
        url,
        {
            "action": "issue_refund",
            "issue_refund-account": "A1",
            "issue_refund-amount": "lots",
            "explanation": "goodwill",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    # Every error at once, in words, and the page is the journey's.
    assert "Amount must be an amount such as 12.50" in page and "Reason is required." in page
    assert f"J-{journey.pk}" in page
    response = client.post(url, {"action": "no_such_action", "explanation": "x"})
    assert response.status_code == 400
    assert not ProposedAction.objects.filter(journey=journey).exists()


def test_the_person_in_control_proposes_an_action_through_the_policy(as_user, supervisor, journey):
    _taken(journey, supervisor)
    response = as_user(supervisor).post(
        reverse("journey_propose", args=[journey.pk]),
        {
            "action": "lookup_account",
            "lookup_account-customer": "CUST-00001",
            "explanation": "check the flags",
        },
    )
    assert response.status_code == 302
    proposal = ProposedAction.objects.get(journey=journey)
    assert proposal.proposed_by_user == supervisor
    assert proposal.status == ProposedAction.Status.EXECUTED
    assert proposal.decision_rule


def test_someone_not_in_control_cannot_act(as_user, supervisor, compliance, journey):
    assert (
        as_user(supervisor).post(reverse("journey_send_message", args=[journey.pk]), {"text": "hi"}).status_code == 403
    )
    _taken(journey, supervisor)
    assert (
        as_user(compliance).post(reverse("journey_send_message", args=[journey.pk]), {"text": "hi"}).status_code == 403
    )


def test_hand_back_with_a_note(as_user, supervisor, journey):
    _taken(journey, supervisor)
    response = as_user(supervisor).post(reverse("journey_hand_back", args=[journey.pk]), {"note": "all yours"})
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.controller_user is None and journey.status == Journey.Status.RUNNING
    assert "supervisor: all yours" in journey.context["guidance"]


def test_only_a_person_allowed_to_force_sees_force_hand_back(as_user, supervisor, compliance, admin_user, journey):
    _taken(journey, supervisor)
    assert (
        "Force hand back" not in as_user(compliance).get(reverse("journey_detail", args=[journey.pk])).content.decode()
    )
    assert as_user(compliance).post(reverse("journey_hand_back", args=[journey.pk]), {"force": "on"}).status_code == 403
    client = as_user(admin_user)
    assert "Force hand back" in client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert client.post(reverse("journey_hand_back", args=[journey.pk]), {"force": "on"}).status_code == 302
    assert Journey.objects.get(pk=journey.pk).controller_user is None


def test_withdraw_a_pending_proposal_from_the_journey_page(as_user, supervisor, supervisor2, journey):
    from tests.journeys.test_control import _pending_proposal

    proposal = _pending_proposal(journey)
    _taken(journey, supervisor)
    assert as_user(supervisor2).post(reverse("proposal_withdraw", args=[proposal.pk])).status_code == 404
    client = as_user(supervisor)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert f'data-proposal="{proposal.pk}"' in page and "Withdraw" in page
    assert client.post(reverse("proposal_withdraw", args=[proposal.pk]), {"reason": "not needed"}).status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == ProposedAction.Status.WITHDRAWN


def test_an_unchanged_timeline_poll_is_an_empty_204(as_user, supervisor, journey, django_assert_max_num_queries):
    client = as_user(supervisor)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    poll = re.search(r'hx-get="(/journeys/\d+/timeline/[^"]+)"', page).group(1).replace("&amp;", "&")
    # session, user, the journey, "agents paused?", "anything newer?"
    with django_assert_max_num_queries(5):
        response = client.get(poll, **HTMX)
    assert response.status_code == 204 and response.content == b""


def test_a_timeline_poll_after_new_events_renders_them(as_user, supervisor, journey):
    from journeys.services import journey_customer_message

    client = as_user(supervisor)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    poll = re.search(r'hx-get="(/journeys/\d+/timeline/[^"]+)"', page).group(1).replace("&amp;", "&")
    journey_customer_message(journey_id=journey.pk, text="Any news?")
    response = client.get(poll, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Any news?" in body and 'hx-swap-oob="true"' in body


def test_a_timeline_poll_reloads_the_page_when_control_changed(as_user, supervisor, compliance, journey):
    client = as_user(compliance)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    poll = re.search(r'hx-get="(/journeys/\d+/timeline/[^"]+)"', page).group(1).replace("&amp;", "&")
    _taken(journey, supervisor)
    response = client.get(poll, **HTMX)
    assert response["HX-Refresh"] == "true"


# --- the stop button page --------------------------------------------------------------------


def test_the_stop_button_page_is_for_people_who_may_pause(as_user, admin_user, supervisor, compliance):
    assert as_user(admin_user).get(reverse("agents_stop_button")).status_code == 200
    assert as_user(supervisor).get(reverse("agents_stop_button")).status_code == 404
    assert (
        as_user(compliance)
        .post(reverse("agents_stop_button"), {"scope": "all", "op": "pause", "reason": "x"})
        .status_code
        == 404
    )


def test_an_admin_pauses_and_resumes_a_definition_from_the_console(as_user, admin_user):
    client = as_user(admin_user)
    response = client.post(reverse("agents_stop_button"), {"scope": "lost_card", "op": "pause", "reason": "incident"})
    assert response.status_code == 302
    pause = AgentPause.objects.get()
    assert pause.definition.key == "lost_card" and pause.is_active
    page = client.get(reverse("agents_stop_button")).content.decode()
    assert "still paused" in page and "incident" in page
    client.post(reverse("agents_stop_button"), {"scope": "lost_card", "op": "resume", "reason": "fixed"})
    pause.refresh_from_db()
    assert not pause.is_active


def test_a_supervisor_granted_pause_agents_may_pause_their_definition(as_user, supervisor):
    from guardian.shortcuts import assign_perm

    from journeys.models import JourneyDefinition

    assign_perm("journeys.pause_agents", supervisor, JourneyDefinition.objects.get(key="lost_card"))
    client = as_user(supervisor)
    page = client.get(reverse("agents_stop_button")).content.decode()
    assert "Lost" in page and "Pause all agents" not in page
    assert (
        client.post(reverse("agents_stop_button"), {"scope": "fee_refund", "op": "pause", "reason": "x"}).status_code
        == 400
    )
    assert client.post(reverse("agents_stop_button"), {"scope": "all", "op": "pause", "reason": "x"}).status_code == 403
    assert (
        client.post(reverse("agents_stop_button"), {"scope": "lost_card", "op": "pause", "reason": "x"}).status_code
        == 302
    )


def test_pausing_without_a_reason_is_a_form_error(as_user, admin_user):
    response = as_user(admin_user).post(reverse("agents_stop_button"), {"scope": "all", "op": "pause", "reason": ""})
    assert response.status_code == 409
    assert "Say why" in response.content.decode()
    assert not AgentPause.objects.exists()


def test_the_journey_page_shows_that_agents_are_paused(as_user, admin_user, supervisor, journey):
    from journeys.control import agents_pause

    agents_pause(user=admin_user, definition=None, reason="incident 7")
    page = as_user(supervisor).get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert "Agents paused" in page and "incident 7" in page


@pytest.mark.parametrize(
    "url_name",
    ["journey_take_over", "journey_hand_back", "journey_send_message", "journey_propose"],
)
def test_every_control_endpoint_is_404_for_a_foreign_team(as_user, supervisor, supervisor2, journey, url_name):
    _taken(journey, supervisor)
    response = as_user(supervisor2).post(reverse(url_name, args=[journey.pk]), {"text": "hi", "force": "on"})
    assert response.status_code == 404
    assert Journey.objects.get(pk=journey.pk).controller_user == supervisor


def test_the_menu_puts_the_live_board_first_and_the_stop_button_only_for_pausers(as_user, supervisor, admin_user):
    from console.navigation import items_for

    assert [i.label for i in items_for(supervisor)][:1] == ["Live board"]
    assert "Stop button" not in [i.label for i in items_for(supervisor)]
    assert "Stop button" in [i.label for i in items_for(admin_user)]


def test_execute_now_is_offered_for_approved_proposals(as_user, supervisor, compliance, journey):
    from tests.journeys.test_control import _pending_proposal

    proposal = _pending_proposal(journey)
    ProposedAction.objects.filter(pk=proposal.pk).update(status=ProposedAction.Status.APPROVED)
    _taken(journey, supervisor)
    url = reverse("journey_execute_approved", args=[journey.pk])
    assert as_user(compliance).post(url).status_code == 403
    client = as_user(supervisor)
    assert 'id="execute-form"' in client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert client.post(url).status_code == 302
    proposal.refresh_from_db()
    assert proposal.status != ProposedAction.Status.APPROVED


def test_a_timeline_poll_reloads_the_page_when_the_agents_are_paused(as_user, supervisor, admin_user, journey):
    from journeys.control import agents_pause

    client = as_user(supervisor)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    poll = re.search(r'hx-get="(/journeys/\d+/timeline/[^"]+)"', page).group(1).replace("&amp;", "&")
    agents_pause(user=admin_user, definition=None, reason="incident")
    assert client.get(poll, **HTMX)["HX-Refresh"] == "true"


def test_the_hand_back_form_offers_waiting_for_the_customer(client, supervisor):
    from journeys.control import journey_take_over as take
    from journeys.models import Journey
    from journeys.services import journey_start

    journey = journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})
    take(journey_id=journey.pk, user=supervisor)
    client.force_login(supervisor)
    page = client.get(f"/journeys/{journey.pk}/").content.decode()
    assert "The agent waits for the customer&#x27;s reply first" in page
    bad = client.post(f"/journeys/{journey.pk}/hand-back/", {"then": "sleep"})
    assert bad.status_code == 400
    done = client.post(f"/journeys/{journey.pk}/hand-back/", {"then": "wait_for_customer"}, follow=True)
    assert "which waits for the customer&#x27;s reply." in done.content.decode()
    journey.refresh_from_db()
    assert journey.waiting_on == Journey.WaitingOn.CUSTOMER


def test_a_running_journey_of_paused_agents_shows_as_paused_everywhere(
    client, supervisor, admin_user, django_capture_on_commit_callbacks
):
    from journeys.control import agents_pause
    from journeys.models import JourneyDefinition
    from journeys.services import journey_start

    journey = journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})
    with django_capture_on_commit_callbacks(execute=True):
        agents_pause(user=admin_user, definition=JourneyDefinition.objects.get(key="lost_card"), reason="Incident")
    client.force_login(supervisor)
    for url in (reverse("board"), reverse("journey_list"), reverse("journey_detail", args=[journey.pk])):
        page = client.get(url).content.decode()
        assert '<span class="badge status-paused"' in page, url
        assert '<span class="badge status-running' not in page, url
    timeline = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert "admin paused agents on Lost or stolen card: Incident" in timeline
