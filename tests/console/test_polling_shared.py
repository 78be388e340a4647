"""Pollers that share a view share one render, and the shared HTML is masked before anyone reuses it."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory

from console import polling
from review.audit import masking
from review.audit.masking import MaskingMiddleware

from .test_masking import customer_secrets

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def renders(monkeypatch) -> list[dict[str, Any]]:
    """Every render the helper asks for, with its context; the 'template' writes out ``text``."""
    seen: list[dict[str, Any]] = []

    def render_to_string(template: str, context: dict[str, Any], request=None) -> str:
        seen.append(context)
        time.sleep(context.get("slow", 0))
        return f"<p>{context['text']}</p>"

    monkeypatch.setattr(polling, "render_to_string", render_to_string)
    return seen


def _key(marker: str, shared_key: str = "everyone") -> str:
    return "poll:" + hashlib.sha256(f"console/board.html#board\n{marker}\n{shared_key}".encode()).hexdigest()


def _poll(context, *, marker: str = "m1", shared_key: str = "everyone") -> HttpResponse:
    request = RequestFactory().get("/board/", HTTP_HX_REQUEST="true")
    request.htmx = True

    def view(request) -> HttpResponse:
        return polling.live_poll(
            request,
            marker=marker,
            sent=None,
            page="console/board.html",
            fragment="console/board.html#board",
            context=context,
            shared_key=shared_key,
        )

    return MaskingMiddleware(view)(request)


def test_an_answer_from_the_shared_render_is_masked_though_its_request_rendered_nothing(demo, renders):
    secrets = customer_secrets("CUST-00005")

    def context() -> dict[str, Any]:
        # What a page does as it loads a customer's journeys: the masking layer learns the customer.
        masking.register_customer("CUST-00005")
        return {"text": f"Moved to {secrets['address']}, phone {secrets['phone']}"}

    first, second = _poll(context), _poll(context)

    assert len(renders) == 1  # the second poller reused the first one's HTML
    for response in (first, second):
        body = response.content.decode()
        assert secrets["phone"] not in body and secrets["address"] not in body, body
        assert response["Vary"] == "HX-Request"
    # Nothing sensitive sits in the shared cache either.
    stored = cache.get(_key("m1"))
    assert stored is not None and secrets["phone"] not in stored and secrets["address"] not in stored


def test_a_value_revealed_to_one_person_is_not_shared_with_the_others(demo, renders):
    secrets = customer_secrets("CUST-00005")

    def context() -> dict[str, Any]:
        masking.register_customer("CUST-00005")
        masking.current().reveal(secrets["phone"])  # broke glass on this one response
        return {"text": f"phone {secrets['phone']}"}

    def others_context() -> dict[str, Any]:
        raise AssertionError("the second poller must reuse the shared render")

    _poll(context)
    assert secrets["phone"] not in _poll(others_context).content.decode()


def test_pollers_arriving_during_a_render_wait_for_it_instead_of_rendering_again(renders):
    answers: list[str] = []
    start = threading.Barrier(8)

    def poller() -> None:
        start.wait()
        answers.append(_poll(lambda: {"text": "the board", "slow": 0.3}, marker="m2").content.decode())

    threads = [threading.Thread(target=poller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(renders) == 1
    assert answers == ["<p>the board</p>"] * 8
    # A new marker is a new change: one more render, not one per poller.
    _poll(lambda: {"text": "the board, moved"}, marker="m3")
    _poll(lambda: {"text": "the board, moved"}, marker="m3")
    assert len(renders) == 2


def test_a_render_that_never_finishes_does_not_stall_the_others(renders, monkeypatch):
    monkeypatch.setattr(polling, "RENDER_WAIT_SECONDS", 0.1)
    cache.add(_key("m4") + ":rendering", 1, 60)  # a render elsewhere took the key and died

    response = _poll(lambda: {"text": "rendered anyway"}, marker="m4")

    assert response.content.decode() == "<p>rendered anyway</p>"


def test_a_marker_stamp_never_holds_a_digit():
    # Stamps whose hex has no letter at all (about one in four hundred microsecond stamps) are the
    # ones that used to read as a card number.
    for stamp in (0, 9, 0x6617141931477, 0x1234567890123, 1_764_454_400_123_456):
        written = polling.marker_stamp(stamp)
        assert written and not any(ch.isdigit() for ch in written)
        assert int(written.translate(str.maketrans("ghijklmnop", "0123456789")), 16) == stamp
