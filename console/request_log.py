"""One structured log line per HTTP request (on with ``LOG_FORMAT=json``).

Carries the method, path, status, duration, the user's id and, on a journey's URLs, the journey
id, so a supervisor's click can be followed into the runtime's turn lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

log = logging.getLogger("handoff.http")


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        journey_id = None
        if match and (match.url_name or "").startswith("journey") and "pk" in match.kwargs:
            journey_id = match.kwargs["pk"]
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "event": "request",
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": _loaded_user_id(request),
                "journey_id": journey_id,
            },
        )
        return response


def _loaded_user_id(request: HttpRequest) -> int | None:
    """The user's id if the request already loaded the user: logging must not cost a query (or
    fail while the database is down)."""
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped  # type: ignore[attr-defined]
        if user is empty:
            return None
    return user.pk if user is not None and user.is_authenticated else None
