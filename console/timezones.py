"""Times in the operator's own zone.

The zone is, in order: the one the person chose on their settings page, else the one their
browser reports (a cookie ``static/console/timezone.js`` keeps current), else ``TIME_ZONE``.
The chosen zone is copied into the session at login and on save, so a request costs no query.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE = "handoff_tz"
SESSION_KEY = "handoff_time_zone"


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_zone(name: str | None) -> str | None:
    """The name if it is a zone this server knows, else None (cookies are user input)."""
    if name and len(name) <= 64 and name in known_zones():
        return name
    return None


def zone_for(request: HttpRequest) -> tuple[str, str]:
    """(zone name, where it came from: "chosen", "browser" or "server")."""
    session = getattr(request, "session", None)
    chosen = valid_zone(session.get(SESSION_KEY)) if session is not None else None
    if chosen:
        return chosen, "chosen"
    browser = valid_zone(unquote(request.COOKIES.get(COOKIE, "")))
    if browser:
        return browser, "browser"
    return settings.TIME_ZONE, "server"


class OperatorTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name, source = zone_for(request)
        request.time_zone = name
        request.time_zone_source = source
        timezone.activate(zoneinfo.ZoneInfo(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def remember_chosen_zone(sender, request: HttpRequest, user, **kwargs) -> None:
    """On login, copy the person's chosen zone into the session (user_logged_in receiver)."""
    from .models import OperatorSettings

    chosen = OperatorSettings.objects.filter(user=user).values_list("time_zone", flat=True).first()
    if valid_zone(chosen):
        request.session[SESSION_KEY] = chosen
    else:
        request.session.pop(SESSION_KEY, None)


def chosen_zone(user) -> str:
    """The zone the person chose on their settings page ("" for their browser's)."""
    from .models import OperatorSettings

    return OperatorSettings.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


def choose_zone(user, zone: str) -> None:
    """Save the person's chosen zone ("" for their browser's)."""
    from .models import OperatorSettings

    OperatorSettings.objects.update_or_create(user=user, defaults={"time_zone": zone})
