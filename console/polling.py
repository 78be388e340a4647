"""One answer for every live poll (board, approval queue, timeline, exceptions).

A polling page sends back the change marker it shows. The answer is

- ``204`` when the marker is still current (htmx keeps what it shows; no render);
- the page's fragment for htmx when it moved;
- the full page otherwise (a first load, a reload, a bookmark);

always with ``Vary: HX-Request``, so a cache never serves the fragment for the page or the other
way round. Pollers that share a view share one render per change: given ``shared_key`` (what the
fragment depends on besides the marker — the visible definitions and the filters), the rendered
fragment is cached under that key and the marker, so the first poller after a change renders and
the others reuse its HTML. A shared fragment must not depend on the user beyond that key (no CSRF
token, no per-user text); per-response layers (masking, CSP) still run on every answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers

# A cached fragment is keyed by its marker, so it is never stale; the TTL only bounds memory.
FRAGMENT_TTL_SECONDS = 120


def live_poll(
    request: HttpRequest,
    *,
    marker: str,
    sent: str | None,
    page: str,
    fragment: str,
    context: Callable[[], dict[str, Any]],
    shared_key: str | None = None,
) -> HttpResponse:
    htmx = bool(getattr(request, "htmx", False))
    if htmx and sent is not None and sent == marker:
        response = HttpResponse(status=204)
    elif htmx and shared_key is not None:
        key = "poll:" + hashlib.sha256(f"{fragment}\n{marker}\n{shared_key}".encode()).hexdigest()
        html = cache.get(key)
        if html is None:
            html = render_to_string(fragment, context(), request=request)
            cache.set(key, html, FRAGMENT_TTL_SECONDS)
        response = HttpResponse(html)
    else:
        response = render(request, fragment if htmx else page, context())
    patch_vary_headers(response, ("HX-Request",))
    return response
