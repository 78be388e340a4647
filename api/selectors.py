"""Read-side queries of the API admin pages (tokens and webhooks), next to ``api.tokens`` and
``api.webhooks``.

Views call these and hand evaluated results to templates: no query runs while a template renders.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from journeys.models import Agent

from .models import ApiToken, WebhookDelivery, WebhookSubscription


def token_users(issuer: Any) -> QuerySet:
    """Whom a new token issued by ``issuer`` may act as: an active agent's service user or the
    issuer themself, by name (a form field's choices)."""
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(Q(agent__isnull=False) | Q(pk=issuer.pk)).order_by("username")


def webhook_agents() -> QuerySet[Agent]:
    """The agents a webhook may be narrowed to (a form field's choices)."""
    return Agent.objects.all()


def token_rows() -> list[ApiToken]:
    """Every token with its user (and the user's agent), its maker and who revoked it."""
    return list(ApiToken.objects.select_related("user", "user__agent", "created_by", "revoked_by"))


def token_exists(pk: int) -> bool:
    return ApiToken.objects.filter(pk=pk).exists()


def subscriptions() -> list[WebhookSubscription]:
    return list(WebhookSubscription.objects.select_related("agent"))


def subscription_or_none(pk: int) -> WebhookSubscription | None:
    return WebhookSubscription.objects.select_related("agent").filter(pk=pk).first()


def recent_deliveries(subscription: WebhookSubscription) -> list[WebhookDelivery]:
    """The subscription's last 100 deliveries with every attempt and who replayed it."""
    return list(subscription.deliveries.prefetch_related("attempt_log", "attempt_log__replay_by")[:100])


def delivery_or_none(pk: int) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(pk=pk).first()
