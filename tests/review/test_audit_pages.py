"""Compliance pages: search, a journey's story, exports, verification with progress, break glass."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from journeys import events
from journeys.models import Event, Journey, ProposedAction
from journeys.services import journey_start, lock_journey, proposal_create
from review.audit.chain import audit_append
from review.audit.offline import read_export, verify_rows
from review.models import AuditRecord, AuditVerification
from review.models.audit import GOVERNANCE_CHAIN, journey_chain
from tests.conftest import as_database_superuser


@pytest.fixture
def card_journey(demo, agent):
    journey = journey_start(
        definition="card_dispute",
        customer_ref="CUST-00002",
        request={"merchant": "Shop", "amount": "80.00"},
    )
    journey.context["facts"] = {
        "card": "4000111122223333",
        "address": "12 Station Road, Springfield SP1 2CD",
        "premium": False,
    }
    Journey.objects.filter(pk=journey.pk).update(context=journey.context)
    return journey


@pytest.fixture
def fee_journey(demo, agent):
    return journey_start(definition="fee_refund", customer_ref="CUST-00003")


def _decided_story(journey, agent, approver):
    """A proposal that needed approval, was approved with a reason and executed."""
    locked = lock_journey(journey.pk)
    proposal = proposal_create(
        locked,
        action="issue_refund",
        params={"account": "ACC-1", "amount": "80.00", "reason": "provisional credit"},
        explanation="Credit the disputed charge while the case runs.",
        key=f"k-{journey.pk}",
        agent=agent,
    )
    ProposedAction.objects.filter(pk=proposal.pk).update(status="pending", decision_rule="refund ≤ 500: one approver")
    proposal.refresh_from_db()
    ProposedAction.objects.filter(pk=proposal.pk).update(
        status="approved", decided_by=approver, decision_reason="Customer is genuine"
    )
    events.record(
        locked,
        Event.Kind.ACTION_APPROVED,
        "Approved by supervisor: Customer is genuine",
        actor_kind=Event.Actor.PERSON,
        actor_user=approver,
        proposal=proposal,
        data={"reason": "Customer is genuine"},
    )
    events.record(
        locked,
        Event.Kind.TAKEOVER,
        "supervisor took over.",
        actor_kind=Event.Actor.PERSON,
        actor_user=approver,
    )
    return proposal


def test_compliance_searches_every_definition_and_supervisors_only_their_own(
    client, compliance, supervisor, card_journey, fee_journey
):
    client.force_login(compliance)
    page = client.get(reverse("audit:search"))
    assert page.status_code == 200
    assert f"J-{card_journey.pk}" in page.text and f"J-{fee_journey.pk}" in page.text
    # supervisor has no audit grant: no audit pages at all
    client.force_login(supervisor)
    assert client.get(reverse("audit:search")).status_code == 404
    assert client.get(reverse("audit:journey", args=[card_journey.pk])).status_code == 404


def test_a_team_scoped_auditor_sees_only_their_definitions_records(client, supervisor, card_journey, fee_journey):
    from guardian.shortcuts import assign_perm

    from journeys.models import JourneyDefinition

    team = supervisor.groups.get()
    for definition in JourneyDefinition.objects.filter(key__in=["card_dispute", "lost_card"]):
        assign_perm("journeys.audit", team, definition)
    audit_append(chain=GOVERNANCE_CHAIN, kind="login_failed", summary="Failed login for “mallory”")
    client.force_login(supervisor)
    page = client.get(reverse("audit:search"))
    assert f"J-{card_journey.pk}" in page.text
    assert f"J-{fee_journey.pk}" not in page.text
    assert "mallory" not in page.text  # organisation-wide records need audit on everything
    assert client.get(reverse("audit:journey", args=[fee_journey.pk])).status_code == 404
    foreign = AuditRecord.objects.filter(journey_id=fee_journey.pk).first()
    assert client.get(reverse("audit:record", args=[foreign.pk])).status_code == 404


@pytest.mark.parametrize(
    "filters,expect_card,expect_fee",
    [
        ({"customer": "CUST-00002"}, True, False),
        ({"kind": "journey_started"}, True, True),
        ({"actor": "Scripted agent"}, True, True),
        ({"action": "issue_refund"}, True, False),
        ({"decision": "approved"}, True, False),
        ({"since": "2000-01-01T00:00", "until": "2001-01-01T00:00"}, False, False),
    ],
)
def test_search_filters_by_customer_actor_kind_action_decision_and_time(
    client,
    compliance,
    supervisor,
    agent,
    card_journey,
    fee_journey,
    filters,
    expect_card,
    expect_fee,
):
    _decided_story(card_journey, agent, supervisor)
    client.force_login(compliance)
    page = client.get(reverse("audit:search"), filters)
    assert page.status_code == 200
    assert (f"J-{card_journey.pk}</a>" in page.text) == expect_card
    assert (f"J-{fee_journey.pk}</a>" in page.text) == expect_fee


def test_search_with_a_bad_time_range_is_a_form_error(client, compliance, card_journey):
    client.force_login(compliance)
    page = client.get(reverse("audit:search"), {"since": "2030-01-02T00:00", "until": "2030-01-01T00:00"})
    assert page.status_code == 200
    assert "must be before" in page.text


def test_search_pages_with_a_keyset_cursor_and_never_counts_the_trail(client, compliance, card_journey):
    for i in range(120):
        audit_append(
            chain=journey_chain(card_journey.pk),
            kind="agent_note",
            summary=f"note {i}",
            journey_id=card_journey.pk,
            definition_id=card_journey.definition_id,
        )
    client.force_login(compliance)
    with CaptureQueriesContext(connection) as queries:
        first = client.get(reverse("audit:search"), {"journey": card_journey.pk})
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    assert "note 119" in first.text and "note 69" not in first.text
    oldest_on_page = first.context["oldest"]
    second = client.get(reverse("audit:search"), {"journey": card_journey.pk, "before": oldest_on_page})
    assert "note 69" in second.text and "note 119" not in second.text
    back = client.get(reverse("audit:search"), {"journey": card_journey.pk, "after": second.context["newest"]})
    assert "note 119" in back.text


def test_the_journey_audit_page_tells_the_story_at_each_decision_point(
    client, compliance, supervisor, agent, card_journey
):
    _decided_story(card_journey, agent, supervisor)
    client.force_login(compliance)
    page = client.get(reverse("audit:journey", args=[card_journey.pk]))
    assert page.status_code == 200
    text = page.text
    assert "Credit the disputed charge while the case runs." in text  # the proposal's explanation
    assert "Scripted agent" in text  # who proposed
    assert "<b>supervisor</b> approved" in text  # who approved
    assert "Customer is genuine" in text  # and why
    assert "Taken over" in text or "Takeover" in text  # who took over and when


def test_export_of_a_journey_re_verifies_offline(client, compliance, card_journey):
    client.force_login(compliance)
    for name, fmt in (("audit:journey_export_jsonl", "jsonl"), ("audit:journey_export_csv", "csv")):
        response = client.get(reverse(name, args=[card_journey.pk]))
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode()
        report = verify_rows(read_export(body.splitlines(keepends=True), fmt))
        assert report["ok"], report["problems"]
        assert report["records"] == AuditRecord.objects.filter(journey_id=card_journey.pk).count()
        assert report["gaps"] == 0
    assert AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN, kind="audit_export", actor_label="compliance").exists()


def test_export_of_a_search_masks_payloads_for_people_without_the_unmask_right(
    client, admin_user, compliance, card_journey
):
    audit_append(
        chain=journey_chain(card_journey.pk),
        kind="agent_note",
        summary="looked up the card",
        journey_id=card_journey.pk,
        definition_id=card_journey.definition_id,
        payload={"data": {"card": "4000111122223333"}},
    )
    from review.models import SensitiveDataGrant

    SensitiveDataGrant.objects.filter(team__name="Compliance").delete()
    client.force_login(compliance)
    body = b"".join(client.get(reverse("audit:export_jsonl"), {"journey": card_journey.pk}).streaming_content)
    assert b"4000111122223333" not in body
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert verify_rows(rows)["ok"]


def test_verification_runs_as_a_celery_task_with_progress(
    client, compliance, card_journey, django_capture_on_commit_callbacks
):
    # An eager task stands in for the worker here; the worker test below runs the real thing.
    from console.celery import app

    app.conf.task_always_eager = True
    try:
        client.force_login(compliance)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("audit:verify_start"), headers={"HX-Request": "true"})
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 200
    verification = AuditVerification.objects.get()
    progress = client.get(reverse("audit:verify_progress", args=[verification.pk]))
    assert "Passed" in progress.text
    page = client.get(reverse("audit:verify"))
    assert "Passed" in page.text


@pytest.mark.worker
def test_a_real_worker_runs_a_verification_and_the_page_shows_the_broken_record(client, celery_worker, demo):
    from tests.conftest import wait_for

    journey = journey_start(definition="fee_refund", customer_ref="CUST-00004")
    record = AuditRecord.objects.filter(journey_id=journey.pk).order_by("seq").first()
    with as_database_superuser() as cursor:
        cursor.execute("ALTER TABLE review_auditrecord DISABLE TRIGGER review_auditrecord_append_only")
        cursor.execute("UPDATE review_auditrecord SET summary = 'forged' WHERE id = %s", [record.pk])
        cursor.execute("ALTER TABLE review_auditrecord ENABLE TRIGGER review_auditrecord_append_only")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="compliance"))
    client.post(reverse("audit:verify_start"))
    verification = wait_for(lambda: AuditVerification.objects.filter(status="broken").first(), timeout=30)
    assert verification.first_broken_record_id == record.pk
    page = client.get(reverse("audit:verify"))
    assert f"A-{record.pk}" in page.text
    # Let the journey's turns settle: a turn still writing while teardown truncates the tables
    # deadlocks the flush.
    wait_for(
        lambda: (
            Journey.objects.filter(pk=journey.pk, lease_until__isnull=True)
            .exclude(status=Journey.Status.RUNNING, waiting_on__in=[Journey.WaitingOn.NOTHING, Journey.WaitingOn.RETRY])
            .exists()
        ),
        message=f"J-{journey.pk} did not settle",
    )


def test_sensitive_facts_are_masked_on_the_journey_page(client, supervisor, card_journey):
    client.force_login(supervisor)
    page = client.get(reverse("journey_detail", args=[card_journey.pk]))
    assert page.status_code == 200
    assert "4000111122223333" not in page.text
    assert "3333" in page.text  # the last four stay visible
    assert "12 Station Road" not in page.text
    assert "Break glass" in page.text  # Cards team holds the unmask right on card disputes


def test_without_the_unmask_right_there_is_no_break_glass(client, supervisor, card_journey):
    from review.models import SensitiveDataGrant

    SensitiveDataGrant.objects.filter(team__name="Cards team").delete()
    client.force_login(supervisor)
    page = client.get(reverse("journey_detail", args=[card_journey.pk]))
    assert "Break glass" not in page.text
    response = client.post(
        reverse("audit:unmask", args=[card_journey.pk]),
        {"field": "facts.card", "reason": "I just want to see it"},
    )
    assert response.status_code == 404


def test_break_glass_unmasks_one_field_with_a_reason_and_is_audited(client, supervisor, card_journey):
    client.force_login(supervisor)
    url = reverse("audit:unmask", args=[card_journey.pk])
    response = client.post(
        url,
        {"field": "facts.card", "reason": "Customer disputes the card number"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "4000111122223333" in response.text
    assert "12 Station Road" not in response.text
    record = AuditRecord.objects.get(kind="break_glass")
    assert record.chain == journey_chain(card_journey.pk)
    assert record.actor_label == "supervisor"
    assert record.payload == {"field": "facts.card", "reason": "Customer disputes the card number"}


def test_break_glass_without_a_reason_or_for_a_plain_field_is_refused(client, supervisor, card_journey):
    client.force_login(supervisor)
    url = reverse("audit:unmask", args=[card_journey.pk])
    no_reason = client.post(url, {"field": "facts.card", "reason": ""}, headers={"HX-Request": "true"})
    assert no_reason.status_code == 400
    assert "4000111122223333" not in no_reason.text
    plain = client.post(url, {"field": "facts.premium", "reason": "Just curious, honestly"})
    assert plain.status_code == 400
    assert not AuditRecord.objects.filter(kind="break_glass").exists()


def test_a_foreign_team_cannot_break_glass_on_another_teams_journey(client, supervisor2, card_journey):
    client.force_login(supervisor2)
    response = client.post(
        reverse("audit:unmask", args=[card_journey.pk]),
        {"field": "facts.card", "reason": "Looking around the bank"},
    )
    assert response.status_code == 404
    assert not AuditRecord.objects.filter(kind="break_glass").exists()


def test_the_journey_page_links_to_its_audit_page_only_for_auditors(client, compliance, supervisor, card_journey):
    audit_url = f'href="{reverse("audit:journey", args=[card_journey.pk])}"'
    client.force_login(compliance)
    assert audit_url in client.get(reverse("journey_detail", args=[card_journey.pk])).text
    client.force_login(supervisor)
    assert audit_url not in client.get(reverse("journey_detail", args=[card_journey.pk])).text


def test_a_second_click_joins_the_running_verification_but_a_stale_one_is_replaced(client, compliance, demo):
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(compliance)
    client.post(reverse("audit:verify_start"), headers={"HX-Request": "true"})
    client.post(reverse("audit:verify_start"), headers={"HX-Request": "true"})
    assert AuditVerification.objects.count() == 1
    AuditVerification.objects.update(created_at=timezone.now() - timedelta(hours=1), status="running")
    client.post(reverse("audit:verify_start"), headers={"HX-Request": "true"})
    assert AuditVerification.objects.count() == 2
