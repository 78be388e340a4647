"""The live board: visibility, filters, highlighting, query count, and the cheap unchanged poll."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from journeys.control import agents_pause, journey_take_over
from journeys.models import Journey, JourneyDefinition
from journeys.services import journey_start

HTMX = {"HTTP_HX_REQUEST": "true"}


def _start(definition: str, n: int = 1) -> list[Journey]:
    return [
        journey_start(definition=definition, customer_ref=f"CUST-{i + 1:05d}", request={"reason": "lost"})
        for i in range(n)
    ]


def _cursor(response) -> str:
    return re.search(r'data-cursor="([^"]+)"', response.content.decode()).group(1)


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_the_board_is_the_supervisors_landing_page(as_user, supervisor):
    response = as_user(supervisor).get("/")
    assert response.status_code == 302 and response.url == reverse("board")


def test_the_board_shows_only_live_journeys_of_the_users_teams(as_user, supervisor):
    cards = _start("card_dispute")[0]
    fees = _start("fee_refund")[0]
    done = _start("lost_card")[0]
    Journey.objects.filter(pk=done.pk).update(status=Journey.Status.COMPLETED)
    page = as_user(supervisor).get(reverse("board")).content.decode()
    assert f'data-journey="{cards.pk}"' in page
    assert f'data-journey="{fees.pk}"' not in page
    assert f'data-journey="{done.pk}"' not in page
    assert "Card dispute" in page and "Fee refund" not in page.split('id="board"')[1].split("<table")[1]


def test_compliance_sees_every_live_journey_read_only(as_user, compliance):
    journeys = _start("card_dispute") + _start("fee_refund")
    page = as_user(compliance).get(reverse("board")).content.decode()
    for journey in journeys:
        assert f'data-journey="{journey.pk}"' in page


def test_a_user_in_no_team_does_not_reach_the_board_which_is_not_in_their_menu(as_user, outsider):
    _start("card_dispute")
    response = as_user(outsider).get(reverse("board"))
    assert response.status_code == 404
    page = response.content.decode()
    assert "data-journey=" not in page
    assert 'class="mainnav"' in page and "Not found" in page  # the 404 page keeps the layout


def test_the_board_needs_a_login(client, demo):
    assert client.get(reverse("board")).status_code == 302


def test_filters_live_in_the_url(as_user, supervisor):
    dispute = _start("card_dispute")[0]
    lost = _start("lost_card")[0]
    Journey.objects.filter(pk=lost.pk).update(status=Journey.Status.HUMAN)
    client = as_user(supervisor)
    page = client.get(reverse("board"), {"definition": "card_dispute"}).content.decode()
    assert f'data-journey="{dispute.pk}"' in page and f'data-journey="{lost.pk}"' not in page
    page = client.get(reverse("board"), {"needs_person": "on"}).content.decode()
    assert f'data-journey="{lost.pk}"' in page and f'data-journey="{dispute.pk}"' not in page
    page = client.get(reverse("board"), {"status": "running", "agent": "Scripted agent"}).content.decode()
    assert f'data-journey="{dispute.pk}"' in page and f'data-journey="{lost.pk}"' not in page
    # The poll keeps the filters.
    assert "needs_person=on" in client.get(reverse("board"), {"needs_person": "on"}).content.decode()


def test_a_filter_naming_another_teams_definition_is_a_form_error(as_user, supervisor):
    _start("fee_refund")
    response = as_user(supervisor).get(reverse("board"), {"definition": "fee_refund", "status": "nonsense"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page and "data-journey=" not in page


def test_journeys_waiting_on_a_person_stand_out_and_sla_breaches_more(as_user, supervisor):
    waiting, breached, calm = _start("card_dispute", 3)
    Journey.objects.filter(pk=waiting.pk).update(
        status=Journey.Status.WAITING_APPROVAL, waiting_on=Journey.WaitingOn.APPROVAL
    )
    Journey.objects.filter(pk=breached.pk).update(
        status=Journey.Status.HUMAN, sla_deadline=timezone.now() - timedelta(minutes=5)
    )
    page = as_user(supervisor).get(reverse("board")).content.decode()
    assert f'class="needs-person" data-journey="{waiting.pk}"' in page
    assert f'class="breach" data-journey="{breached.pk}"' in page
    assert f'class="" data-journey="{calm.pk}"' in page
    assert '<span class="n">2</span> wait on a person' in page
    assert '<span class="n">1</span> past SLA' in page
    # Most urgent first: the breached journey leads.
    assert page.index(f'data-journey="{breached.pk}"') < page.index(f'data-journey="{calm.pk}"')


def test_the_board_shows_who_is_in_control_and_paused_agents(as_user, supervisor, admin_user):
    taken, paused = _start("card_dispute", 2)
    journey_take_over(journey_id=taken.pk, user=supervisor)
    agents_pause(
        user=admin_user,
        definition=JourneyDefinition.objects.get(key="card_dispute"),
        reason="incident",
    )
    page = as_user(supervisor).get(reverse("board")).content.decode()
    row = page.split(f'data-journey="{taken.pk}"')[1].split("</tr>")[0]
    assert '<span class="badge person">supervisor</span>' in row
    row = page.split(f'data-journey="{paused.pk}"')[1].split("</tr>")[0]
    assert "paused" in row
    assert "Agents paused" in page


def test_the_board_query_count_does_not_grow_with_its_rows(as_user, supervisor, admin_user):
    client = as_user(supervisor)
    _start("card_dispute", 2)
    client.get(reverse("board"))  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("board"))
    for journey in _start("lost_card", 30):
        journey_take_over(journey_id=journey.pk, user=supervisor)  # rows with a person in control
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("board"))
    assert response.content.decode().count("data-journey=") == 32
    assert len(many) == len(few)
    # session, user, definitions, marker, agents, counts, pauses, rows, versions, and the
    # navigation menu's own queries (rights, teams, organisation-wide grants), and the masking
    # layer's two: a constant, whatever the number of rows.
    assert len(many) <= 15


@pytest.mark.usefixtures("within_one_minute")
def test_an_unchanged_poll_is_an_empty_204_costing_a_few_queries(as_user, supervisor, django_assert_max_num_queries):
    _start("card_dispute", 3)
    client = as_user(supervisor)
    cursor = _cursor(client.get(reverse("board")))
    # session, user, visible definitions, newest journey change, pause history size
    with django_assert_max_num_queries(5):
        response = client.get(reverse("board"), {"cursor": cursor}, **HTMX)
    assert response.status_code == 204
    assert response.content == b""


def test_a_poll_after_a_change_renders_the_board_again(as_user, supervisor):
    journey = _start("card_dispute")[0]
    client = as_user(supervisor)
    cursor = _cursor(client.get(reverse("board")))
    journey_take_over(journey_id=journey.pk, user=supervisor)
    response = client.get(reverse("board"), {"cursor": cursor}, **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="board"') and "<html" not in page
    assert _cursor(response) != cursor
    assert '<span class="badge person">supervisor</span>' in page


def test_the_board_is_paginated(as_user, supervisor, settings):
    from console import board

    journeys = _start("card_dispute", 4)
    original = board.BOARD_PAGE_SIZE
    board.BOARD_PAGE_SIZE = 3
    try:
        client = as_user(supervisor)
        first = client.get(reverse("board")).content.decode()
        second = client.get(reverse("board"), {"page": 2}).content.decode()
    finally:
        board.BOARD_PAGE_SIZE = original
    assert first.count("data-journey=") == 3 and second.count("data-journey=") == 1
    assert "Page 1 of 2" in first and len(journeys) == 4


def test_a_pause_shows_on_the_next_poll(as_user, supervisor, admin_user):
    _start("card_dispute")
    client = as_user(supervisor)
    cursor = _cursor(client.get(reverse("board")))
    agents_pause(user=admin_user, definition=None, reason="incident")
    response = client.get(reverse("board"), {"cursor": cursor}, **HTMX)
    assert response.status_code == 200
    assert "Agents paused" in response.content.decode()


def test_the_counters_follow_the_filters(as_user, supervisor):
    _start("card_dispute", 3)
    lost = _start("lost_card", 2)
    Journey.objects.filter(pk=lost[0].pk).update(status=Journey.Status.HUMAN)
    client = as_user(supervisor)

    def counters(**query) -> dict:
        context = client.get(reverse("board"), query).context
        return {
            "total": context["total"],
            "by_status": {key: n for key, _, n in context["status_counts"]},
            "by_definition": {key: n for key, _, n in context["definition_counts"]},
            "waiting": context["waiting_on_person"],
            "rows": context["page"].paginator.count,
        }

    everything = counters()
    assert everything["total"] == 5 and everything["by_status"]["human"] == 1
    lost_only = counters(definition="lost_card")
    assert lost_only["total"] == lost_only["rows"] == 2
    assert lost_only["by_status"] == {"running": 1, "waiting_approval": 0, "human": 1}
    assert lost_only["by_definition"] == {"card_dispute": 3, "lost_card": 2}  # where each click leads
    assert lost_only["waiting"] == 1
    human = counters(status="human")
    assert human["total"] == human["rows"] == 1
    assert human["by_definition"] == {"card_dispute": 0, "lost_card": 1}
    needs = counters(needs_person="on")
    assert needs["total"] == needs["rows"] == 1 and needs["by_status"]["running"] == 0
    nobody = counters(agent="No such agent")  # an invalid filter: the error shows, the counters stay
    assert nobody["total"] == 5
