"""The timeline and the audit story say what happened, as it happened; kinds are enumerations."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from demo.corebank import SimulatedCoreBank
from journeys import events
from journeys.control import agents_pause
from journeys.models import Event, JourneyDefinition
from review import services
from review.audit.listeners import record_kind
from review.audit.views import KIND_CHOICES, AuditSearch
from review.models import AuditRecord
from review.models.audit import GOVERNANCE_CHAIN

from .helpers import propose, start


@pytest.fixture
def edited(demo, agent, supervisor2):
    """A fee refund the agent proposed at 441.97 and a supervisor edited to 300.00 and approved."""
    journey = start("fee_refund", "CUST-00003")
    proposal = propose(
        journey,
        "issue_refund",
        {"account": "ACC-000003", "amount": "441.97", "reason": "fee reversal", "customer": "CUST-00003"},
        agent=agent,
    )
    services.proposal_edit_approve(
        proposal_id=proposal.pk,
        user=supervisor2,
        params={**proposal.params, "amount": "300.00"},
        reason="Only the overdraft fees are ours to refund",
    )
    return journey, proposal


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_the_proposed_event_keeps_the_parameters_it_was_written_with(client, edited, supervisor2):
    journey, proposal = edited
    proposal.refresh_from_db()
    assert proposal.params["amount"] == "300.00"  # the row moved on…
    client.force_login(supervisor2)
    body = _text(client.get(reverse("journey_detail", args=[journey.pk])))
    proposed = body.split("ev-action_proposed")[1].split("</li>")[0]
    assert "441.97" in proposed and "300.00" not in proposed  # …the event did not
    assert '441.97</span> → <span class="after">300.00' in body
    assert "Only the overdraft fees are ours to refund" in body


def test_an_edit_event_renders_before_after_and_reason(client, demo, agent, supervisor2):
    journey = start("fee_refund", "CUST-00003")
    proposal = propose(
        journey, "issue_refund", {"account": "ACC-000003", "amount": "80.00", "reason": "fee reversal"}, agent=agent
    )
    events.record(
        journey,
        Event.Kind.ACTION_EDITED,
        "supervisor2 edited Issue refund",
        actor_kind=Event.Actor.PERSON,
        actor_user=supervisor2,
        proposal=proposal,
        data={
            "before": {"account": "ACC-000003", "amount": "80.00"},
            "after": {"account": "ACC-000003", "amount": "35.00"},
            "changed": ["amount"],
            "reason": "Only the fee itself",
            "narrowing": True,
        },
    )
    client.force_login(supervisor2)
    body = _text(client.get(reverse("journey_detail", args=[journey.pk])))
    assert "Action edited" in body
    assert '80.00</span> → <span class="after">35.00' in body and "Only the fee itself" in body
    assert "Narrowing edit" in body


def test_the_compliance_story_shows_the_edit_at_the_decision_point(client, edited, compliance):
    journey, proposal = edited
    client.force_login(compliance)
    body = _text(client.get(reverse("audit:journey", args=[journey.pk])))
    point = body.split(f"proposal {proposal.pk}")[1].split("</dl>")[0]
    assert "Edited" in point and "supervisor2" in point
    assert '441.97</span> → <span class="after">300.00' in point
    assert "Only the overdraft fees are ours to refund" in point, point
    # What the agent proposed stays as proposed.
    assert point.split("Parameters")[1].split("</dd>")[0].count("441.97") == 1


def test_the_audit_search_offers_exactly_the_kinds_of_the_trail(demo):
    offered = {value for value, _ in KIND_CHOICES if value}
    assert offered == set(AuditRecord.Kind.values)
    for kind in (
        "pause",
        "resume",
        "label_change",
        "membership_change",
        "grant_added",
        "grant_removed",
        "grant_change",
        "team_change",
        "break_glass",
        "action_edited",
    ):
        assert AuditSearch({"kind": kind}).is_valid(), kind
    # Journey event kinds that are never journey records are not offered.
    assert "paused" not in offered and "resumed" not in offered
    assert not AuditSearch({"kind": "made_up"}).is_valid()


def test_a_kind_outside_the_enumeration_is_refused_by_the_writers(demo):
    with pytest.raises(ValueError):
        record_kind("agents_paused")


def test_a_pause_record_names_the_definition_it_paused_and_is_found_by_its_kind(client, admin_user, compliance):
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    agents_pause(user=admin_user, definition=lost_card, reason="Card network outage")
    record = AuditRecord.objects.get(chain=GOVERNANCE_CHAIN, kind=AuditRecord.Kind.PAUSE)
    assert record.definition_id == lost_card.pk
    client.force_login(compliance)
    body = _text(client.get(reverse("audit:search"), {"kind": "pause"}))
    assert f"A-{record.pk}" in body and "Agents paused" in body
    # The auditor of lost cards finds it by the definition's records too.
    assert AuditRecord.objects.filter(definition_id=lost_card.pk, kind="pause").exists()


def test_an_address_is_kept_as_the_customer_typed_it(demo):
    result = SimulatedCoreBank().validate_address(address="12  High Street,Salisbury SP2 2CD")
    assert result == {"address": "12 High Street, Salisbury SP2 2CD", "exists": True}
