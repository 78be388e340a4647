"""Thin Celery adapters for webhook delivery; the timers live in PostgreSQL."""

from __future__ import annotations

from celery import shared_task

from .webhooks import deliveries_due, delivery_attempt


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def send_due_webhooks() -> int:
    """Beat: enqueue every delivery whose back-off has run out."""
    due = deliveries_due()
    for pk in due:
        deliver_webhook.delay(pk)
    return len(due)
