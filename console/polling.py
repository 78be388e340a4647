"""One answer for every live poll (board, approval queue, timeline, exceptions, desk).

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

Two guards make the sharing safe and real:

- The HTML is masked before it is stored, with the sensitive values its render registered and
  nothing revealed. An answer served from the cache never ran the render, so the masking layer
  of that request knows none of the journeys on it: unmasked HTML in the cache would reach the
  page unmasked (and would sit in a shared cache in clear).
- One render per change: the first poller after a change takes a short lock on the key and
  renders; pollers that arrive meanwhile wait for its HTML (up to ``RENDER_WAIT_SECONDS``)
  instead of rendering the same fragment again. With a cache shared between processes
  (``CACHE_URL``) that holds across the whole deployment; with the default per-process cache,
  within each process.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers

from review.audit import masking

_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def marker_stamp(n: int) -> str:
    """``n`` in hex spelled with letters only (0 to 9 written g to p), for a change marker's time stamps.

    The masking layer masks card-shaped runs of digits; a microsecond stamp in decimal is one,
    and even in hex one stamp in a few hundred has no letter. A masked marker is never current,
    so every poll would render."""
    return format(n, "x").translate(_DIGITS_AS_LETTERS)


# A cached fragment is keyed by its marker, so it is never stale; the TTL only bounds memory.
FRAGMENT_TTL_SECONDS = 120
# How long one render may hold a key, and how long the others wait for its HTML before rendering
# themselves (a render that died leaves its lock to expire).
RENDER_LOCK_SECONDS = 10
RENDER_WAIT_SECONDS = 2.0
RENDER_WAIT_STEP_SECONDS = 0.01


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
            html = _render_shared(request, key, fragment, context)
        response = HttpResponse(html)
    else:
        response = render(request, fragment if htmx else page, context())
    patch_vary_headers(response, ("HX-Request",))
    return response


def _render_shared(request: HttpRequest, key: str, fragment: str, context: Callable[[], dict[str, Any]]) -> str:
    """The shared fragment under ``key``: rendered here under a lock, or waited for."""
    lock = key + ":rendering"
    if not cache.add(lock, 1, RENDER_LOCK_SECONDS):
        deadline = time.monotonic() + RENDER_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(RENDER_WAIT_STEP_SECONDS)
            html = cache.get(key)
            if html is not None:
                return html
        return _render_masked(request, fragment, context)  # the other render is slow: not worth the wait
    try:
        html = _render_masked(request, fragment, context)
        cache.set(key, html, FRAGMENT_TTL_SECONDS)
        return html
    finally:
        cache.delete(lock)


def _render_masked(request: HttpRequest, fragment: str, context: Callable[[], dict[str, Any]]) -> str:
    html = render_to_string(fragment, context(), request=request)
    masker = masking.current()
    return masker.mask_for_everyone(html) if masker is not None else html
