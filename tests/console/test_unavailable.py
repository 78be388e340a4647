"""The 503 page: a lost database is a clear, self-retrying page, never a stack trace."""

from __future__ import annotations

import json

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from console.unavailable import DatabaseUnavailableMiddleware, server_error


def _middleware() -> DatabaseUnavailableMiddleware:
    return DatabaseUnavailableMiddleware(lambda request: None)


@pytest.mark.parametrize("error", [OperationalError("connection refused"), InterfaceError("connection closed")])
def test_a_view_that_loses_the_database_answers_a_plain_503_page(error):
    request = RequestFactory().get("/board/", headers={"Accept": "text/html"})
    response = _middleware().process_exception(request, error)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "briefly unavailable" in page and 'http-equiv="refresh"' in page
    assert "connection" not in page.split("<main>")[1].split("database")[0]
    assert "refused" not in page and "Traceback" not in page


def test_an_htmx_poll_that_loses_the_database_gets_503_json():
    request = RequestFactory().get("/board/", headers={"HX-Request": "true"})
    response = _middleware().process_exception(request, OperationalError("gone"))
    assert response.status_code == 503
    assert json.loads(response.content)["ok"] is False


def test_other_errors_are_left_to_django():
    request = RequestFactory().get("/board/")
    assert _middleware().process_exception(request, ValueError("bug")) is None


def test_the_500_handler_tells_a_lost_database_from_a_bug():
    request = RequestFactory().get("/board/", headers={"Accept": "text/html"})
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        assert server_error(request).status_code == 503
    try:
        raise KeyError("bug")
    except KeyError:
        response = server_error(request)
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    assert "KeyError" not in response.content.decode()
