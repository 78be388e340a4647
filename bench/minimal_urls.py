"""The console's URLs plus one minimal view, the baseline of a poll: session, user, 204."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from console.urls import urlpatterns as console_urlpatterns


@login_required
def minimal_poll(request: HttpRequest) -> HttpResponse:
    request.user.pk  # noqa: B018 - load the user, as every console view does
    return HttpResponse(status=204)


urlpatterns = [*console_urlpatterns, path("bench/minimal-poll/", minimal_poll)]
