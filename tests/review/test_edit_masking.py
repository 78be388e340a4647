"""Edit & approve never pre-fills a sensitive value in clear; a reveal needs a reason and is audited."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from journeys.models import ProposedAction
from review.models import AuditRecord, SensitiveDataGrant

from .helpers import propose, start

ADDRESS = "27 Harbour View, Salisbury SP2 2CD"


@pytest.fixture
def update(demo, agent) -> ProposedAction:
    journey = start("address_change", "CUST-00006")
    proposal = propose(
        journey,
        "update_address",
        {"customer": "CUST-00006", "address": ADDRESS, "recent_changes": True},
        agent=agent,
    )
    assert proposal.status == ProposedAction.Status.PENDING
    return proposal


def _breaks(proposal) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(proposal_id=proposal.pk, kind=AuditRecord.Kind.BREAK_GLASS))


def test_the_form_shows_the_address_masked_not_in_clear(client, update, supervisor2):
    client.force_login(supervisor2)
    response = client.get(reverse("review_edit", args=[update.pk]))
    assert response.status_code == 200
    assert response.context["form"].initial["address"] == "••••, Salisbury"  # masked before any page layer
    body = html.unescape(response.content.decode())
    assert 'value="••••, Salisbury"' in body
    assert "Harbour View" not in body and "SP2 2CD" not in body


def test_a_field_left_masked_keeps_the_stored_value(client, update, supervisor2):
    client.force_login(supervisor2)
    response = client.post(
        reverse("review_edit", args=[update.pk]),
        {"customer": "CUST-00006", "address": "••••, Salisbury", "edit_reason": "Recent change was the customer's own"},
    )
    # The address is the only editable parameter: left masked, it keeps the stored value, so the
    # edit changes nothing and the person is told to approve it as proposed instead.
    assert response.status_code == 400
    assert "Nothing was changed" in response.context["error"]
    update.refresh_from_db()
    assert update.params["address"] == ADDRESS
    assert update.status == ProposedAction.Status.PENDING


def test_a_new_address_typed_in_replaces_it(client, update, supervisor2):
    client.force_login(supervisor2)
    client.post(
        reverse("review_edit", args=[update.pk]),
        {
            "customer": "CUST-00006",
            "address": "3 Mill Road, Salisbury SP2 7AA",
            "recent_changes": "on",
            "edit_reason": "Customer corrected the house number",
        },
    )
    update.refresh_from_db()
    assert update.params["address"] == "3 Mill Road, Salisbury SP2 7AA"


def test_revealing_with_a_reason_shows_it_and_is_audited(client, update, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("review_edit", args=[update.pk]),
        {"reveal": "address", "reveal_reason": "Customer disputes the spelling"},
    )
    assert response.status_code == 200
    assert f'value="{ADDRESS}"' in html.unescape(response.content.decode())
    (record,) = _breaks(update)
    assert record.payload == {"field": f"proposal.{update.pk}.address", "reason": "Customer disputes the spelling"}
    assert record.actor_label == "admin"
    update.refresh_from_db()
    assert update.status == ProposedAction.Status.PENDING  # a reveal decides nothing


def test_no_reveal_without_a_reason_or_without_the_right(client, update, admin_user, supervisor2):
    client.force_login(admin_user)
    response = client.post(reverse("review_edit", args=[update.pk]), {"reveal": "address", "reveal_reason": "x"})
    assert response.status_code == 400
    assert "Harbour View" not in html.unescape(response.content.decode())
    # The Servicing team may decide here; without its unmask right it may not reveal.
    SensitiveDataGrant.objects.filter(team__name="Servicing team", definition__key="address_change").delete()
    client.force_login(supervisor2)
    response = client.post(
        reverse("review_edit", args=[update.pk]), {"reveal": "address", "reveal_reason": "I would like to see"}
    )
    assert "Harbour View" not in html.unescape(response.content.decode())
    assert "Unmask address" not in html.unescape(response.content.decode())
    forged = client.post(reverse("review_edit", args=[update.pk]), {"reveal": "customer", "reveal_reason": "Forged"})
    assert forged.status_code == 400
    assert _breaks(update) == []
