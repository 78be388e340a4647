"""One helper answers every live poll: 204 when nothing changed, the fragment for htmx, the full
page otherwise, always with ``Vary: HX-Request``; the board's marker moves only on what the board
shows, and pollers sharing a view share one render per change."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from journeys.lifecycle import journey as lifecycle
from journeys.models import Journey
from journeys.services import journey_start, lock_journey

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fresh_fragments():
    cache.clear()
    yield
    cache.clear()


def _start(n: int = 1) -> list[Journey]:
    return [
        journey_start(definition="card_dispute", customer_ref=f"CUST-{i + 1:05d}", request={"reason": "x"})
        for i in range(n)
    ]


def _cursor(response) -> str:
    return re.search(r'data-cursor="([^"]+)"', response.content.decode()).group(1)


def _varies(response) -> bool:
    return "HX-Request" in [v.strip() for v in response.get("Vary", "").split(",")]


@pytest.mark.usefixtures("within_one_minute")
def test_every_answer_of_the_board_poll_varies_on_hx_request(client, supervisor):
    _start()
    client.force_login(supervisor)
    page = client.get(reverse("board"))
    assert page.status_code == 200 and "<html" in page.content.decode() and _varies(page)
    cursor = _cursor(page)
    unchanged = client.get(reverse("board"), {"cursor": cursor}, **HTMX)
    assert unchanged.status_code == 204 and _varies(unchanged)
    stale = client.get(reverse("board"), {"cursor": "0-0.0-0"}, **HTMX)
    assert stale.status_code == 200 and _varies(stale)
    assert stale.content.decode().lstrip().startswith('<div id="board"')
    # Without htmx the cursor is ignored: a bookmark or reload gets the whole page.
    full = client.get(reverse("board"), {"cursor": cursor})
    assert full.status_code == 200 and "<html" in full.content.decode() and _varies(full)


def test_queue_and_timeline_polls_answer_through_the_same_helper(client, supervisor):
    journey = _start()[0]
    client.force_login(supervisor)
    queue = client.get(reverse("review_queue"))
    assert queue.status_code == 200 and _varies(queue)
    cursor = queue.context["cursor"]
    unchanged = client.get(reverse("review_queue"), {"since": cursor}, **HTMX)
    assert unchanged.status_code == 204 and _varies(unchanged)
    rows = client.get(reverse("review_queue"), {"since": "stale"}, **HTMX)
    assert rows.status_code == 200 and "<html" not in rows.content.decode() and _varies(rows)

    newest = journey.events.order_by("-pk").first().pk
    timeline = reverse("journey_timeline", args=[journey.pk])
    same = client.get(timeline, {"after": newest}, **HTMX)
    assert same.status_code == 204 and _varies(same)
    older = client.get(timeline, {"after": newest - 1}, **HTMX)
    assert older.status_code == 200 and 'hx-swap-oob="true"' in older.content.decode() and _varies(older)
    whole = client.get(timeline)
    assert whole.status_code == 200 and "<html" in whole.content.decode() and _varies(whole)
    # A hostile cursor is a render, never a 500.
    assert client.get(timeline, {"after": "-1'; drop"}, **HTMX).status_code == 200


@pytest.mark.usefixtures("within_one_minute")
def test_the_board_marker_ignores_leases_context_and_the_sweeper(client, supervisor, settings):
    journey = _start()[0]
    client.force_login(supervisor)
    cursor = _cursor(client.get(reverse("board")))
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        lifecycle.begin_turn(locked, token="t", until=timezone.now() + timezone.timedelta(seconds=60))
        locked.context["facts"] = {"noted": True}
        locked.save(update_fields=["context"])
        lifecycle.release_turn(locked)
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        lifecycle.requeue(
            locked, now=timezone.now(), grace=timezone.timedelta(seconds=1), backoff_max=timezone.timedelta(seconds=9)
        )
    assert client.get(reverse("board"), {"cursor": cursor}, **HTMX).status_code == 204
    # The step the board shows changes: the marker moves.
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        locked.current_step = "next"
        locked.state_changed_at = timezone.now()
        lifecycle.begin_turn(locked, token="t", until=timezone.now() + timezone.timedelta(seconds=60))
    moved = client.get(reverse("board"), {"cursor": cursor}, **HTMX)
    assert moved.status_code == 200 and _cursor(moved) != cursor


def test_pollers_sharing_a_view_share_one_render_per_change(client, supervisor, supervisor2):
    from django.test import Client

    journeys = _start(3)
    client.force_login(supervisor)
    tab = Client()  # the same supervisor's second session: the same view
    tab.force_login(supervisor)
    with CaptureQueriesContext(connection) as first_render:
        first = client.get(reverse("board"), {"cursor": "stale"}, **HTMX)
    with CaptureQueriesContext(connection) as second_render:
        second = tab.get(reverse("board"), {"cursor": "stale"}, **HTMX)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert all(f'data-journey="{j.pk}"' in first.content.decode() for j in journeys)
    # The second poller pays for the marker, not for the render.
    assert len(second_render) < len(first_render)
    assert not any('"sla_deadline" ASC' in q["sql"] for q in second_render.captured_queries)
    # Another filter is another view, rendered for itself.
    filtered = tab.get(reverse("board"), {"cursor": "stale", "needs_person": "on"}, **HTMX).content.decode()
    assert filtered.count("data-journey=") == 0
    # Another team's supervisor sees other definitions: never this fragment.
    other = Client()
    other.force_login(supervisor2)
    theirs = other.get(reverse("board"), {"cursor": "stale"}, **HTMX).content.decode()
    assert not any(f'data-journey="{j.pk}"' in theirs for j in journeys)


def test_a_user_who_sees_other_definitions_never_gets_anothers_fragment(client, supervisor, compliance):
    from django.test import Client

    journeys = [*_start(), journey_start(definition="fee_refund", customer_ref="CUST-00009", request={})]
    client.force_login(supervisor)
    mine = client.get(reverse("board"), {"cursor": "stale"}, **HTMX).content.decode()
    auditor = Client()
    auditor.force_login(compliance)
    theirs = auditor.get(reverse("board"), {"cursor": "stale"}, **HTMX).content.decode()
    assert f'data-journey="{journeys[1].pk}"' not in mine
    assert f'data-journey="{journeys[1].pk}"' in theirs


@pytest.mark.usefixtures("within_one_minute")
def test_the_marker_is_never_masked_as_a_card_number(client, supervisor):
    """The masking layer masks card-shaped numbers; a decimal microsecond stamp is one (one in
    ten passes the Luhn check), which masked the marker and turned every poll into a render."""

    journeys = _start(5)
    client.force_login(supervisor)
    for journey in journeys:
        # Stamps across many microseconds, as a busy board has.
        Journey.objects.filter(pk=journey.pk).update(updated_at=timezone.now())
        page = client.get(reverse("board"))
        cursor = _cursor(page)
        assert "•" not in cursor and not re.search(r"\d{13,}", cursor)
        assert client.get(reverse("board"), {"cursor": cursor}, **HTMX).status_code == 204


def _workbench_cursor(response) -> str:
    return re.search(r'id="workbench"[^>]*data-cursor="([^"]+)"', response.content.decode()).group(1)


@pytest.mark.usefixtures("within_one_minute")
def test_the_exception_workbench_polls_through_the_same_helper(client, supervisor):
    from review.cases.services import journey_flag

    journey = _start()[0]
    journey_flag(journey=journey, actor=supervisor, note="a second look")
    client.force_login(supervisor)
    url = reverse("cases:workbench")
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode() and _varies(page)
    cursor = _workbench_cursor(page)
    assert "•" not in cursor and not re.search(r"\d{13,}", cursor)  # never masked as a card number
    unchanged = client.get(url, {"cursor": cursor}, **HTMX)
    assert unchanged.status_code == 204 and _varies(unchanged)
    stale = client.get(url, {"cursor": "stale"}, **HTMX)
    assert stale.status_code == 200 and _varies(stale)
    body = stale.content.decode()
    assert body.lstrip().startswith('<div id="workbench"') and "<html" not in body
    assert "1 unresolved case " in body
    # Without htmx the cursor is ignored: a bookmark or reload gets the whole page.
    full = client.get(url, {"cursor": cursor})
    assert full.status_code == 200 and "<html" in full.content.decode() and _varies(full)
    # The filters ride along in the poll's URL; a bad filter is a page saying so, never a 500.
    filtered = client.get(url, {"definition": "card_dispute", "show": "all"})
    assert "definition=card_dispute" in filtered.content.decode()
    assert client.get(url, {"definition": "no-such", "cursor": "x"}, **HTMX).status_code == 200


@pytest.mark.usefixtures("within_one_minute")
def test_the_workbench_marker_moves_only_with_what_the_workbench_shows(client, supervisor, supervisor2):
    from review.cases.services import group_annotate, group_assign, group_resolve, journey_flag

    first, second = _start(2)
    case = journey_flag(journey=first, actor=supervisor, note="a second look")
    client.force_login(supervisor)
    url = reverse("cases:workbench")
    cursor = _workbench_cursor(client.get(url))
    # Assigning and annotating change nothing the workbench lists.
    group_assign(cases=[case], assignee=supervisor, actor=supervisor)
    group_annotate(cases=[case], actor=supervisor, note="seen it", labels=[])
    assert client.get(url, {"cursor": cursor}, **HTMX).status_code == 204
    # Another team's cases are not on this workbench: its marker stays.
    other = journey_start(definition="fee_refund", customer_ref="CUST-00011", request={})
    journey_flag(journey=other, actor=supervisor2, note="theirs")
    assert client.get(url, {"cursor": cursor}, **HTMX).status_code == 204
    # A new case moves it…
    journey_flag(journey=second, actor=supervisor, note="another look")
    moved = client.get(url, {"cursor": cursor}, **HTMX)
    assert moved.status_code == 200 and "2 unresolved cases" in moved.content.decode()
    cursor = _workbench_cursor(moved)
    # …and so does resolving one.
    group_resolve(cases=[case], resolution="fixed", note="", actor=supervisor)
    resolved = client.get(url, {"cursor": cursor}, **HTMX)
    assert resolved.status_code == 200 and "1 unresolved case " in resolved.content.decode()
    assert client.get(url, {"cursor": _workbench_cursor(resolved)}, **HTMX).status_code == 204
