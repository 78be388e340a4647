"""Signed webhooks: what is sent, how it is signed, retries with back-off, replay, rotation."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from api.models import WebhookAttempt, WebhookDelivery
from api.webhooks import deliveries_due, delivery_attempt, subscription_create, subscription_rotate_secret, verify
from journeys.control import agents_pause, journey_hand_back, journey_take_over
from journeys.models import JourneyDefinition
from journeys.services import journey_start

from ..conftest import wait_for
from .receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    with webhook_receiver() as running:
        yield running


def documented_verify():
    """The verifying snippet of docs/api.md, run as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    code = text.split("Verify it like this (standard library only):", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verify"]


receiver_verifies = documented_verify()


def send_all() -> None:
    for delivery in WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).order_by("id"):
        delivery_attempt(delivery_id=delivery.pk)


def test_takeover_and_hand_back_are_posted_signed(receiver, admin_user, supervisor, agent):
    sub, secret = subscription_create(
        name="ops", url=receiver.url, events=["journey.taken_over", "journey.handed_back"], agent=None, user=admin_user
    )
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    journey_hand_back(journey_id=journey.pk, user=supervisor, note="all yours")
    send_all()
    assert [json.loads(r["body"])["event"] for r in receiver.received] == ["journey.taken_over", "journey.handed_back"]
    first = receiver.received[0]
    payload = json.loads(first["body"])
    assert payload["data"]["journey"] == journey.pk and payload["data"]["status"] == "human"
    assert first["headers"]["Handoff-Event"] == "journey.taken_over"
    assert receiver_verifies(first["body"], first["headers"]["Handoff-Signature"], secret)
    assert verify(first["body"], first["headers"]["Handoff-Signature"], secret)
    assert not receiver_verifies(first["body"] + b" ", first["headers"]["Handoff-Signature"], secret)
    assert not verify(first["body"], first["headers"]["Handoff-Signature"], "whsec_wrong")
    assert WebhookDelivery.objects.filter(subscription=sub, status="delivered").count() == 2


def test_decisions_carry_the_rule_and_only_the_subscribed_agents_journeys(receiver, admin_user, agent):
    from journeys.models import Agent

    from ..review.helpers import refund

    other = Agent.objects.get(name="LLM agent")
    subscription_create(name="mine", url=receiver.url, events=["decision.made"], agent=other, user=admin_user)
    refund(journey_start(definition="fee_refund", customer_ref="CUST-00001"), "20.00", agent=agent)
    assert not WebhookDelivery.objects.exists()  # the scripted agent's journey: not this subscription's
    theirs = journey_start(definition="fee_refund", customer_ref="CUST-00002", agent=other)
    refund(theirs, "120.00", agent=other)
    send_all()
    data = json.loads(receiver.received[0]["body"])["data"]
    assert data["proposal"]["status"] == "pending" and "35.00" in data["proposal"]["rule"]


def test_one_phase_of_a_turn_reads_the_subscriptions_once_and_delivers_each_event(receiver, admin_user, agent):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from journeys import events
    from journeys.models import Event

    subscription_create(
        name="all", url=receiver.url, events=["decision.made", "journey.completed"], agent=None, user=admin_user
    )
    journey = journey_start(definition="fee_refund", customer_ref="CUST-00001", agent=agent)
    with CaptureQueriesContext(connection) as captured, transaction.atomic(), events.together():
        for n in range(3):
            events.record(journey, Event.Kind.ACTION_DECIDED, f"decision {n}")
        events.record(journey, Event.Kind.COMPLETED, "done")
    reads = [q for q in captured.captured_queries if 'FROM "api_webhooksubscription"' in q["sql"]]
    assert len(reads) == 1
    assert WebhookDelivery.objects.filter(event="decision.made").count() == 3
    assert WebhookDelivery.objects.filter(event="journey.completed").count() == 1
    # Outside a phase every event reads them afresh: a subscription made meanwhile is seen.
    subscription_create(name="late", url=receiver.url, events=["decision.made"], agent=None, user=admin_user)
    with transaction.atomic():
        events.record(journey, Event.Kind.ACTION_DECIDED, "after the second subscription")
    assert WebhookDelivery.objects.filter(source__startswith="event:", event="decision.made").count() == 5


def test_a_failing_receiver_is_retried_with_back_off_then_given_up(receiver, admin_user, supervisor, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500, 503, 502]
    subscription_create(name="flaky", url=receiver.url, events=["journey.taken_over"], agent=None, user=admin_user)
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    delivery = WebhookDelivery.objects.get()
    delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    first_wait = delivery.next_attempt_at - timezone.now()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert timedelta(seconds=5) < first_wait <= timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS)
    assert delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: nothing sent
    assert deliveries_due() == [] and deliveries_due(now=delivery.next_attempt_at) == [delivery.pk]
    for _ in range(2):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "gave_up" and delivery.attempts == 3
    assert deliveries_due() == []  # beat has nothing left to send
    assert [a.status_code for a in WebhookAttempt.objects.filter(delivery=delivery).order_by("id")] == [500, 503, 502]


def test_an_admin_replays_a_delivery_by_hand_and_sees_every_attempt(client, receiver, admin_user, supervisor):
    receiver.statuses = [500]
    sub, _ = subscription_create(
        name="ops", url=receiver.url, events=["journey.taken_over"], agent=None, user=admin_user
    )
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    delivery = WebhookDelivery.objects.get()
    delivery_attempt(delivery_id=delivery.pk)
    client.force_login(admin_user)
    r = client.post(f"/webhooks/deliveries/{delivery.pk}/replay/")
    assert r.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and len(receiver.received) == 2
    page = client.get(f"/webhooks/{sub.pk}/").content.decode()
    assert "HTTP 500" in page and "HTTP 200" in page and "replayed by admin" in page


def test_rotation_signs_with_both_secrets_during_the_grace_period(receiver, admin_user, supervisor, settings):
    sub, old = subscription_create(
        name="ops", url=receiver.url, events=["journey.taken_over"], agent=None, user=admin_user
    )
    sub, new = subscription_rotate_secret(subscription_id=sub.pk, user=admin_user)
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    send_all()
    got = receiver.received[0]
    assert receiver_verifies(got["body"], got["headers"]["Handoff-Signature"], old)
    assert receiver_verifies(got["body"], got["headers"]["Handoff-Signature"], new)
    # After the grace period only the new secret signs.
    sub.previous_valid_until = timezone.now() - timedelta(seconds=1)
    sub.save()
    assert sub.signing_secrets() == [new]


def test_pausing_agents_is_posted(receiver, admin_user):
    subscription_create(name="ops", url=receiver.url, events=["agents.paused"], agent=None, user=admin_user)
    agents_pause(user=admin_user, definition=JourneyDefinition.objects.get(key="fee_refund"), reason="incident 42")
    send_all()
    data = json.loads(receiver.received[0]["body"])["data"]
    assert data["definition"] == "fee_refund" and data["reason"] == "incident 42"


@pytest.mark.worker
def test_celery_delivers_after_commit(celery_worker, receiver, demo):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    supervisor = get_user_model().objects.get(username="supervisor")
    subscription_create(name="ops", url=receiver.url, events=["journey.taken_over"], agent=None, user=admin)
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").exists(), message="webhook delivered")
    assert len(receiver.received) == 1
