"""While the database is down the console answers 503 with a plain page, never a stack trace.

A request that cannot reach PostgreSQL (server restarting, connection dropped, failover) raises
``OperationalError`` or ``InterfaceError``. The view's exception goes through the middleware's
``process_exception``; one raised by another middleware (a session or lockout lookup) reaches
Django's 500 handler, which hands it to the same response. The page needs no database (no
session, no user, no context processors), tells the person what is going on, and reloads itself;
Django closes the broken connection at the end of the request, so the first request after the
database is back gets a fresh one and the console recovers by itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader

log = logging.getLogger("handoff.unavailable")
RETRY_SECONDS = 5


def database_unavailable(request: HttpRequest, exception: BaseException) -> HttpResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.path, type(exception).__name__)
    if request.headers.get("HX-Request") or not request.accepts("text/html"):
        response: HttpResponse = JsonResponse(
            {"ok": False, "error": "The console's database is not answering; try again in a few seconds."},
            status=503,
        )
    else:
        page = loader.get_template("503.html").render({"retry_seconds": RETRY_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Turns a lost database connection during a view into the 503 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            return database_unavailable(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the 503 page when the cause is the database, else a plain 500 page."""
    exception = sys.exc_info()[1]
    if isinstance(exception, OperationalError | InterfaceError):
        return database_unavailable(request, exception)
    return HttpResponseServerError(loader.get_template("500.html").render({}))
