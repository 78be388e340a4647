"""Masking at one layer: every page and partial, walked as people without the unmask right.

The walk reuses the permission matrix's URL table and objects, adds free text that quotes the
customers' sensitive values (messages, agent notes, summaries, exception causes, a proposal
parameter), and fails on any known sensitive value of a demo customer in any answer.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from demo.models import CoreCard, CoreCustomer
from journeys import events
from journeys.models import Event, Journey
from review.audit.masking import Masker, luhn_valid, mask_value
from review.audit.services import sensitive_unmask
from review.models import AuditRecord

from .test_permission_matrix import OTHER_METHODS, TABLE, objects  # noqa: F401  (the fixture)

# Exports are attachments: the exporter masks their displayed fields itself and keeps the
# hashed record provable (docs/audit.md); the reveal answers the one value asked for.
NOT_PAGES = {
    "audit:export_csv",
    "audit:export_jsonl",
    "audit:journey_export_csv",
    "audit:journey_export_jsonl",
    "metrics:export",
}
# Walked as these: two people without the unmask right, and two with it (free text stays masked
# for them too until they break glass for one value).
WALKERS = ["supervisor2", "lead", "supervisor", "compliance", "admin"]


def customer_secrets(ref: str) -> dict[str, str]:
    c = CoreCustomer.objects.get(ref=ref)
    card = CoreCard.objects.filter(account__customer=c).first()
    return {
        "address": c.address,
        "street line": c.address.split(",")[0],
        "date of birth": c.date_of_birth.isoformat(),
        "phone": c.phone,
        "email": c.email,
        "card number": card.number,
        "card token": card.token,
    }


def say_everything(journey: Journey, secrets: dict[str, str]) -> None:
    """Free text as customers, agents and people write it, quoting every sensitive value."""
    with transaction.atomic():
        events.record(
            journey,
            Event.Kind.MESSAGE_IN,
            f"I moved to {secrets['address']}; my card {secrets['card number']} was born {secrets['date of birth']}.",
            actor_kind=Event.Actor.CUSTOMER,
            data={"text": f"Call me on {secrets['phone']} or {secrets['email']}"},
        )
        events.record(
            journey,
            Event.Kind.AGENT_NOTE,
            f"Verified {secrets['street line']} and card {secrets['card token']}; phone {secrets['phone']}, "
            f"mail {secrets['email']}. Stray card 4111 1111 1111 1111.",
            actor_kind=Event.Actor.AGENT,
        )
        events.record(
            journey,
            Event.Kind.EXCEPTION,
            f"Customer at {secrets['address']} complained",
            data={"kind": "customer_complaint"},
        )


@pytest.fixture
def walked(objects):  # noqa: F811
    refs = sorted({objects.journey.customer_ref, objects.address_update.journey.customer_ref, "CUST-00002"})
    for journey in Journey.objects.filter(customer_ref__in=refs):
        say_everything(journey, customer_secrets(journey.customer_ref))
    forbidden: dict[str, str] = {}
    for ref in refs:
        for what, value in customer_secrets(ref).items():
            forbidden[f"{ref} {what}"] = value
    forbidden["stray card number"] = "4111 1111 1111 1111"
    forbidden["new address proposed"] = objects.address_update.params["address"]
    forbidden["card in the journey's facts"] = objects.journey.context["facts"]["card"]
    return objects, forbidden


def leaks(body: str, forbidden: dict[str, str]) -> list[str]:
    text = html.unescape(body).lower()
    return [f"{what} ({value!r})" for what, value in forbidden.items() if value.lower() in text]


@pytest.mark.parametrize("role", WALKERS)
def test_no_page_or_partial_shows_a_known_sensitive_value(client, walked, role):
    objects_, forbidden = walked
    user = get_user_model().objects.get(username=role)
    failures: list[str] = []
    walked_pages = 0
    rows = [*TABLE.items(), *OTHER_METHODS]
    # Every GET page also as an htmx partial, the way the page's polling asks for it.
    rows += [(name, row) for name, row in TABLE.items() if row.method == "get" and not row.htmx]
    for index, (name, row) in enumerate(rows):
        if name in NOT_PAGES or name == "audit:unmask":
            continue
        partial = row.htmx or index >= len(TABLE) + len(OTHER_METHODS)
        with transaction.atomic():
            client.force_login(user)  # a walked "logout" must not leave the rest anonymous
            url = reverse(name, kwargs=row.kwargs(objects_))
            headers = {"HX-Request": "true"} if partial else {}
            response = getattr(client, row.method)(
                url, row.data(objects_), headers=headers, follow=row.method == "post"
            )
            body = response.content.decode()
            transaction.set_rollback(True)
        walked_pages += response.status_code == 200
        found = leaks(body, forbidden)
        if found:
            failures.append(f"{name} ({row.method.upper()} {url}{' htmx' if partial else ''}): {', '.join(found)}")
    # lead's menu holds only the approval queue and what it links to; the others reach many more.
    assert walked_pages >= (8 if role == "lead" else 12), "the walk must reach real pages"
    assert not failures, f"as {role}:\n" + "\n".join(failures)


def test_the_journey_page_shows_the_free_text_masked_in_one_form(client, walked, supervisor):
    objects_, _ = walked
    secrets = customer_secrets(objects_.journey.customer_ref)
    client.force_login(supervisor)
    body = html.unescape(client.get(reverse("journey_detail", args=[objects_.journey.pk])).content.decode())
    last4 = secrets["card number"][-4:]
    # The number, the token and the facts' last four digits all read the same.
    assert f"my card •••• {last4} was born ••••-••-••" in body
    assert f"card •••• {last4}; phone" in body
    assert "Stray card •••• 1111." in body
    assert "I moved to ••••, Springfield" in body
    assert f"Verified •••• and card •••• {last4}" in body


def test_an_audit_story_and_record_mask_summaries(client, walked, compliance):
    objects_, forbidden = walked
    client.force_login(compliance)
    record = AuditRecord.objects.filter(journey_id=objects_.journey.pk, kind="message_in").get()
    for url in (reverse("audit:journey", args=[objects_.journey.pk]), reverse("audit:record", args=[record.pk])):
        body = client.get(url).content.decode()
        assert not leaks(body, forbidden), url
        assert "I moved to ••••, Springfield" in html.unescape(body)


def test_break_glass_reveals_the_one_value_asked_for(client, walked, supervisor):
    objects_, _ = walked
    client.force_login(supervisor)
    response = client.post(
        reverse("audit:unmask", args=[objects_.journey.pk]),
        {"field": "facts.card", "reason": "Customer asked to confirm the card"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert objects_.journey.context["facts"]["card"] in response.content.decode()
    assert AuditRecord.objects.filter(journey_id=objects_.journey.pk, kind="break_glass").count() == 1


# --- the masker itself ------------------------------------------------------------------------


@pytest.fixture
def customer(demo) -> dict[str, str]:
    return customer_secrets("CUST-00005")


def _masker(ref: str = "CUST-00005") -> Masker:
    masker = Masker()
    masker.add_customer(ref)
    return masker


def test_known_values_are_masked_however_they_are_written(customer):
    masker = _masker()
    number = customer["card number"]
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    day = customer["date of birth"].split("-")
    text = (
        f"{customer['address'].upper()} | {customer['address'].replace(', ', ' ')} | {spaced} | "
        f"{customer['phone'].replace(' ', '')} | {customer['email'].upper()} | {day[2]}/{day[1]}/{day[0]}"
    )
    masked = masker.mask_text(text)
    for value in (customer["street line"], number[-8:], customer["phone"][-6:], customer["email"].split("@")[0]):
        assert value.lower() not in masked.lower(), masked
    assert customer["date of birth"] not in masked and f"{day[2]}/{day[1]}/{day[0]}" not in masked
    assert f"•••• {number[-4:]}" in masked


def test_card_shaped_numbers_are_masked_only_when_luhn_valid(demo):
    masker = Masker()
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert masker.mask_text("card 4111-1111-1111-1111 ref 4111111111111112") == "card •••• 1111 ref 4111111111111112"
    # A long id inside a longer number, or a short one, is not a card.
    assert masker.mask_text("order 12345") == "order 12345"


def test_a_card_token_masks_as_its_real_last_four_digits(customer):
    assert mask_value("card", customer["card token"]) == f"•••• {customer['card number'][-4:]}"
    assert mask_value("card_last4", customer["card number"][-4:]) == f"•••• {customer['card number'][-4:]}"
    assert mask_value("card", "tok_unknown_9999") == "••••"  # never a made-up "last four"
    assert mask_value("card", mask_value("card", customer["card token"])) == mask_value("card", customer["card token"])


def test_escaped_markup_is_masked_and_revealed_values_pass(demo):
    masker = Masker()
    masker.add_value("address", "1 O'Brien Row, Springfield SP1 1AB")
    escaped = html.escape("Lives at 1 O'Brien Row, Springfield SP1 1AB.")
    assert "Brien" not in masker.mask_markup(f"<p>{escaped}</p>")
    masker.reveal("4111111111111111")
    assert masker.mask_text("4111111111111111") == "4111111111111111"


def test_break_glass_on_a_value_is_audited_with_the_reason(demo, supervisor):
    journey = Journey.objects.create(
        definition_id=Journey._meta.get_field("definition").related_model.objects.get(key="card_dispute").pk,
        version=Journey._meta.get_field("version").related_model.objects.filter(definition__key="card_dispute").first(),
        customer_ref="CUST-00005",
        current_step="verify_identity",
        sla_deadline="2030-01-01T00:00:00Z",
        context={"facts": {"card": "tok_card_00005"}},
    )
    value: Any = sensitive_unmask(user=supervisor, journey=journey, field="facts.card", reason="Customer on the phone")
    assert value == "tok_card_00005"
    record = AuditRecord.objects.get(journey_id=journey.pk, kind=AuditRecord.Kind.BREAK_GLASS)
    assert record.payload == {"field": "facts.card", "reason": "Customer on the phone"}


def test_a_card_has_one_masked_form_on_the_journey_page(client, demo, agent, supervisor):
    from demo.models import CoreCard

    from ..review.helpers import propose, start

    card = CoreCard.objects.get(token="tok_card_00008")
    last4 = card.number[-4:]
    assert last4 != "0008"  # the token's own digits are not the card's
    journey = start("lost_card", "CUST-00008")
    facts = {"card": card.token, "card_last4": last4, "cards": [{"card": card.token, "last4": last4}]}
    Journey.objects.filter(pk=journey.pk).update(context={**journey.context, "facts": facts})
    propose(journey, "block_card", {"card": card.token, "reason": "lost"}, agent=agent)
    with transaction.atomic():
        events.record(journey, Event.Kind.AGENT_NOTE, f"Card •••• {last4} blocked.", actor_kind=Event.Actor.AGENT)
    client.force_login(supervisor)
    body = html.unescape(client.get(reverse("journey_detail", args=[journey.pk])).content.decode())
    assert body.count(f"•••• {last4}") >= 4  # facts, the cards list, the proposal, the note
    assert "•••• 0008" not in body and card.token not in body
    assert f"Card last4</dt><dd>•••• {last4}" in body.replace("\n", "")


def test_digits_inside_a_hash_are_never_taken_for_a_card(demo):
    masker = Masker()
    digest = "ab4111111111111111cd"  # a Luhn-valid run inside a hex digest
    assert masker.mask_text(f"hash {digest}") == f"hash {digest}"


def test_the_django_admin_has_no_page_for_customer_data(client, demo, admin_user):
    # The admin is a side door: it registers no core-bank, journey or event model at all (its
    # pages could not apply team grants), and what it does show passes the same masking layer.
    from django.urls import NoReverseMatch

    for name in (
        "admin:demo_corecustomer_changelist",
        "admin:demo_corecard_changelist",
        "admin:journeys_journey_changelist",
    ):
        with pytest.raises(NoReverseMatch):
            reverse(name)
    secrets = customer_secrets("CUST-00007")
    client.force_login(admin_user)
    for url in (reverse("admin:index"), reverse("admin:journeys_agent_changelist")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not leaks(response.content.decode(), secrets), url


def test_a_value_too_short_to_be_told_from_ordinary_text_is_not_searched_for(demo):
    masker = Masker()
    masker.add_value("address", "1")
    masker.add_value("card", "2256")
    assert masker.mask_text("Step 1 of 3; card •••• 2256") == "Step 1 of 3; card •••• 2256"
