"""The client's address, as far as it can be trusted (login throttling and the audit trail).

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the
deployment says how many proxies of its own sit in front (``TRUSTED_PROXY_COUNT``, or 1 with
``BEHIND_TLS_PROXY``). Then the address that many hops from the right is the one our nearest
trusted proxy saw; anything further left may be forged. Otherwise ``REMOTE_ADDR`` is used, so a
spoofed header cannot give an attacker a fresh address per attempt.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def client_ip(request: Any) -> str | None:
    meta = getattr(request, "META", {}) or {}
    remote = meta.get("REMOTE_ADDR") or None
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies <= 0:
        return remote
    hops = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(hops) < proxies:
        return remote
    return hops[-proxies]
