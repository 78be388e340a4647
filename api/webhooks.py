"""Signed webhooks: decisions, takeovers, hand-backs, pauses and completions, pushed to agents.

Signing: ``Handoff-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` where each ``v1`` is
HMAC-SHA256 over ``f"{t}.{body}"`` with one of the subscription's secrets (two during a
rotation). Receivers verify any ``v1`` against their secret and refuse an old ``t``.

Delivery: a ``WebhookDelivery`` row is written in the transaction of the change it reports (a
unique key per subscription, source and event makes that once), the first attempt is enqueued
after commit, later attempts back off exponentially with the timer in PostgreSQL, sent by beat.
Every attempt is kept for admins; an admin can replay any delivery by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from journeys.db import OpeningRead, instances, register_opening_read, select_all_sql
from journeys.events import current_together, governance_changed
from journeys.models import AgentPause, Event

from .models import WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription

EVENT_KINDS = {
    Event.Kind.ACTION_DECIDED: WebhookEvent.DECISION_MADE,
    Event.Kind.ACTION_APPROVED: WebhookEvent.DECISION_MADE,
    Event.Kind.ACTION_REJECTED: WebhookEvent.DECISION_MADE,
    Event.Kind.ACTION_EXPIRED: WebhookEvent.DECISION_MADE,
    Event.Kind.TAKEOVER: WebhookEvent.TAKEN_OVER,
    Event.Kind.HAND_BACK: WebhookEvent.HANDED_BACK,
    Event.Kind.COMPLETED: WebhookEvent.COMPLETED,
}
SIGNATURE_HEADER = "Handoff-Signature"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(body: bytes, secrets_: list[str], timestamp: int) -> str:
    parts = [f"t={timestamp}"]
    for secret in secrets_:
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def verify(body: bytes, header: str, secret: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """The receiver's side, as documented in docs/api.md."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamp = next((v for k, v in fields if k == "t"), "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in fields)


# --- creating deliveries (inside the changing transaction) ---------------------------------


def _subscriptions(event: str, agent_id: int | None) -> list[WebhookSubscription]:
    # Few rows; filtered here because SQLite (the embedded demo) cannot search JSON lists. Within
    # one phase of an agent's turn (``journeys.events.together``: one transaction, a few events)
    # they are read once.
    group = current_together()
    enabled = group.stash.get("webhook_subscriptions") if group is not None else None
    if enabled is None:
        enabled = list(WebhookSubscription.objects.filter(is_enabled=True))
        if group is not None:
            group.stash["webhook_subscriptions"] = enabled
    return [
        sub
        for sub in enabled
        if event in sub.events and (sub.agent_id is None or agent_id is None or sub.agent_id == agent_id)
    ]


def _turn_subscriptions_statement(journey_id: int, turn: Any) -> list[tuple[str, list]] | None:
    """An agent's turn that proposes or completes records an event subscribers may want: read the
    enabled subscriptions in the round trip that locks its journey (``journeys.db.OpeningRead``);
    any other phase that needs them reads them when it does."""
    if turn is None or not (turn.proposals or turn.then == "complete"):
        return None
    return [(f"{select_all_sql(WebhookSubscription)} WHERE t.is_enabled ORDER BY t.name, t.id", [])]


def _keep_turn_subscriptions(journey_id: int, rows: list[tuple], stash: dict[str, Any]) -> None:
    stash["webhook_subscriptions"] = instances(WebhookSubscription, rows)


register_opening_read(OpeningRead(_turn_subscriptions_statement, _keep_turn_subscriptions))


def _enqueue(deliveries: list[WebhookDelivery]) -> None:
    from .tasks import deliver_webhook

    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(pk))


def _create(
    sub: WebhookSubscription, event: str, source: str, journey_id: int | None, data: dict
) -> WebhookDelivery | None:
    payload = {"event": event, "id": f"{source}:{event}", "created_at": timezone.now().isoformat(), "data": data}
    try:
        with transaction.atomic():
            return WebhookDelivery.objects.create(
                subscription=sub,
                event=event,
                source=source,
                journey_id=journey_id,
                payload=payload,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None  # already queued for this subscription


def on_event_recorded(sender: Any, event: Event, **kwargs: Any) -> None:
    kind = EVENT_KINDS.get(event.kind)
    if kind is None:
        return
    journey = event.journey
    subs = _subscriptions(kind, journey.agent_id)
    if not subs:
        return
    proposal = event.proposal
    data: dict[str, Any] = {
        "journey": journey.pk,
        "definition": journey.definition.key,
        "customer_ref": journey.customer_ref,
        "status": journey.status,
        "event": {"id": event.pk, "kind": event.kind, "summary": event.summary, "at": event.at.isoformat()},
    }
    if proposal is not None:
        data["proposal"] = {
            "id": proposal.pk,
            "action": proposal.action_type.key,
            "status": proposal.status,
            "effect": proposal.decision_effect,
            "rule": proposal.decision_rule,
            "explanation": proposal.decision_explanation,
            "decision_reason": proposal.decision_reason,
        }
    group = current_together()
    if group is not None and event.pk is None:
        # Inside an agent's turn the event is written at the block's end: the deliveries are
        # made then, with its id, from what the journey and the proposal say now.
        group.stash.setdefault("webhooks", {})[id(event)] = (subs, kind, journey.pk, data)
        return
    _deliver(event, subs, kind, journey.pk, data)


def _deliver(event: Event, subs: list[WebhookSubscription], kind: str, journey_id: int, data: dict) -> None:
    data["event"]["id"] = event.pk
    created = [d for d in (_create(s, kind, f"event:{event.pk}", journey_id, data) for s in subs) if d]
    _enqueue(created)


def on_events_written_together(sender: Any, events: list[Event], stash: dict[str, Any], **kwargs: Any) -> None:
    """The deliveries of a block's events that are still part of the transaction, in order."""
    waiting = stash.get("webhooks")
    if not waiting:
        return
    for event in events:
        entry = waiting.get(id(event))
        if entry is not None:
            _deliver(event, *entry)


def on_governance_changed(sender: Any, kind: str, **kwargs: Any) -> None:
    if sender is not AgentPause or kind not in ("pause", "resume"):
        return
    event = WebhookEvent.PAUSED if kind == "pause" else WebhookEvent.RESUMED
    subs = _subscriptions(event, None)
    if not subs:
        return
    info = kwargs.get("data") or {}
    data = {
        "pause": info.get("pause"),
        "definition": info.get("definition"),
        "scope": kwargs.get("subject", ""),
        "reason": kwargs.get("reason", ""),
    }
    created = [d for d in (_create(s, event, f"pause:{info.get('pause')}", None, data) for s in subs) if d]
    _enqueue(created)


# --- delivering -----------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1)))


def delivery_attempt(*, delivery_id: int, replay_by: Any = None) -> WebhookAttempt | None:
    """Try one delivery once. Idempotent for the queue: a delivery that is no longer due (sent
    already, or locked by another worker) is left alone unless an admin replays it."""
    with transaction.atomic():
        qs = WebhookDelivery.objects.select_for_update(skip_locked=True).select_related("subscription")
        delivery = qs.filter(pk=delivery_id).first()
        if delivery is None:
            return None
        if replay_by is None and (
            delivery.status != WebhookDelivery.Status.PENDING
            or (delivery.next_attempt_at and delivery.next_attempt_at > timezone.now())
        ):
            return None
        sub = delivery.subscription
        body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Handoff-Webhooks/1",
            SIGNATURE_HEADER: sign(body, sub.signing_secrets(), stamp),
            "Handoff-Event": delivery.event,
            "Handoff-Delivery": str(delivery.pk),
        }
        started = time.monotonic()
        status_code, error = None, ""
        # The row stays locked during the call (bounded by the timeout), so two workers never
        # send the same attempt.
        try:
            response = httpx.post(sub.url, content=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}: {response.text[:300]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            status_code=status_code,
            error=error.replace("\x00", ""),
            duration_ms=int((time.monotonic() - started) * 1000),
            replay_by=replay_by,
        )
        delivery.attempts += 1
        now = timezone.now()
        if not error:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif replay_by is None or delivery.status == WebhookDelivery.Status.PENDING:
            # (A failed replay leaves a delivered or given-up delivery as it was.)
            if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
                delivery.status = WebhookDelivery.Status.GAVE_UP
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts)
        delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])
        return attempt


def deliveries_due(now=None) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:200]
    )


@transaction.atomic
def subscription_rotate_secret(*, subscription_id: int, user: Any) -> tuple[WebhookSubscription, str]:
    """A new secret at once; the old one keeps signing too for ``WEBHOOK_ROTATION_GRACE_HOURS``."""
    sub = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    secret = new_secret()
    sub.previous_secret = sub.secret
    sub.previous_valid_until = timezone.now() + timedelta(hours=settings.WEBHOOK_ROTATION_GRACE_HOURS)
    sub.secret = secret
    sub.save(update_fields=["secret", "previous_secret", "previous_valid_until"])
    governance_changed.send(
        sender=WebhookSubscription,
        kind="webhook_secret_rotated",
        actor=user,
        subject=f"Webhook “{sub.name}” secret rotated",
        before=None,
        after={"previous_valid_until": sub.previous_valid_until.isoformat()},
        reason="",
        data={"subscription": sub.pk},
    )
    return sub, secret


@transaction.atomic
def subscription_create(
    *, name: str, url: str, events: list[str], agent: Any, user: Any
) -> tuple[WebhookSubscription, str]:
    secret = new_secret()
    sub = WebhookSubscription.objects.create(
        name=name, url=url, events=sorted(set(events)), agent=agent, secret=secret, created_by=user
    )
    governance_changed.send(
        sender=WebhookSubscription,
        kind="webhook_created",
        actor=user,
        subject=f"Webhook “{sub.name}” to {sub.url}",
        before=None,
        after={"events": sub.events, "agent": agent.name if agent else None, "url": sub.url},
        reason="",
        data={"subscription": sub.pk},
    )
    return sub, secret
