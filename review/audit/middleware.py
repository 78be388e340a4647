"""A request whose audit record could not be written fails with a clear page, never half-done.

``audit_append`` raises ``AuditWriteError`` and the change's transaction rolls back with it; this
turns the error into a 503 that says nothing was changed, instead of a bare server error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .chain import AuditWriteError

logger = logging.getLogger(__name__)


class AuditWriteFailureMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, AuditWriteError):
            return None
        logger.error("Audit write failed; the request changed nothing: %s", exception)
        return HttpResponse(
            "The audit trail could not be written, so nothing was changed. Try again; if it keeps "
            "failing, tell an administrator.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
