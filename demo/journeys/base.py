"""What the demo's journey modules share."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

# A simulated customer's reply: (text, data, intent).
Reply = tuple[str, dict[str, Any], str]


# How far back the core bank's "recent changes" look (``lookup_account_changes``, 30 days).
RECENT_DAYS = 30


def without_recent_changes(customers: QuerySet, *, contact: bool = True, card: bool = True) -> QuerySet:
    """``customers`` whose address — and, with ``contact``, phone and email; with ``card``, cards —
    did not change in the last ``RECENT_DAYS``: what the demo's fraud checks look for."""
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    recent = Q(address_changed_at__gte=since)
    if contact:
        recent |= Q(phone_changed_at__gte=since) | Q(email_changed_at__gte=since)
    if card:
        recent |= Q(accounts__cards__issued_at__gte=since)
    return customers.exclude(recent)


def step(key: str, title: str, actions: list[str], nxt: dict[str, str], does: str) -> dict[str, Any]:
    return {"key": key, "title": title, "actions": actions, "next": nxt, "does": does}


def everyone(customers: QuerySet) -> QuerySet:
    """Any customer may open this journey (a module's ``ordinary_customers`` by default)."""
    return customers
