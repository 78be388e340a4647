"""The demo bank's four journey definitions, written customer-back (see JOURNEYS.md).

``install_definitions`` is idempotent: it creates a definition's first version, and a new
version only when the spec below changed, so running journeys keep the version they pinned.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from journeys.models import DefinitionVersion, JourneyDefinition


def _step(key: str, title: str, actions: list[str], nxt: dict[str, str], does: str) -> dict[str, Any]:
    return {"key": key, "title": title, "actions": actions, "next": nxt, "does": does}


DEMO_DEFINITIONS: list[dict[str, Any]] = [
    {
        "key": "card_dispute",
        "name": "Card dispute",
        "customer_goal": "I don't recognise this charge",
        "risk_level": "high",
        "team": "Cards team",
        "fallback_queue": "Cards disputes desk",
        "sla_minutes": 30,
        "spec": {
            "start": "verify_identity",
            "steps": [
                _step(
                    "verify_identity",
                    "Verify identity",
                    ["lookup_account"],
                    {"verified": "find_transaction", "not verified": "person"},
                    "Checks the customer against the core bank.",
                ),
                _step(
                    "find_transaction",
                    "Find the transaction",
                    ["lookup_transactions", "send_message"],
                    {"found": "classify", "several": "ask the customer", "none": "person"},
                    "Matches the customer's description to a recent card transaction.",
                ),
                _step(
                    "classify",
                    "Classify",
                    [],
                    {"classified": "provisional_credit", "low confidence": "person"},
                    "Fraud, merchant dispute, duplicate charge or subscription, with confidence.",
                ),
                _step(
                    "provisional_credit",
                    "Provisional credit",
                    ["issue_refund"],
                    {"credited": "block_card"},
                    "Credits the disputed amount while the case runs.",
                ),
                _step(
                    "block_card",
                    "Block the card (fraud only)",
                    ["block_card"],
                    {"blocked or not fraud": "open_case"},
                    "Stops further fraud.",
                ),
                _step(
                    "open_case",
                    "Open the case",
                    ["open_case"],
                    {"opened": "tell_customer"},
                    "Files a dispute case with the card network.",
                ),
                _step(
                    "tell_customer",
                    "Tell the customer",
                    ["send_message"],
                    {"told": "complete"},
                    "Explains what happens next and when.",
                ),
            ],
        },
    },
    {
        "key": "lost_card",
        "name": "Lost or stolen card",
        "customer_goal": "My card is gone",
        "risk_level": "high",
        "team": "Cards team",
        "fallback_queue": "Cards desk",
        "sla_minutes": 15,
        "spec": {
            "start": "verify_identity",
            "steps": [
                _step(
                    "verify_identity",
                    "Verify identity",
                    ["lookup_account"],
                    {"verified": "block_card", "not verified": "person"},
                    "Checks the customer.",
                ),
                _step(
                    "block_card",
                    "Block the card",
                    ["block_card"],
                    {"blocked": "review_activity"},
                    "Blocks the card before anything else.",
                ),
                _step(
                    "review_activity",
                    "Review recent activity",
                    ["lookup_transactions"],
                    {"clean": "order_replacement", "suspicious": "order_replacement + linked dispute"},
                    "Looks for transactions after the reported loss.",
                ),
                _step(
                    "order_replacement",
                    "Order a replacement",
                    ["order_card"],
                    {"ordered": "tell_customer"},
                    "Orders a card to the address on file.",
                ),
                _step(
                    "tell_customer",
                    "Tell the customer",
                    ["send_message"],
                    {"told": "complete"},
                    "Delivery date and temporary digital card.",
                ),
            ],
        },
    },
    {
        "key": "fee_refund",
        "name": "Fee refund",
        "customer_goal": "Why was I charged this fee?",
        "risk_level": "medium",
        "team": "Servicing team",
        "fallback_queue": "Servicing desk",
        "sla_minutes": 60,
        "spec": {
            "start": "verify_identity",
            "steps": [
                _step(
                    "verify_identity",
                    "Verify identity",
                    ["lookup_account"],
                    {"verified": "find_fee", "not verified": "person"},
                    "Checks the customer.",
                ),
                _step(
                    "find_fee",
                    "Find the fee",
                    ["lookup_fees", "send_message"],
                    {"found": "check_eligibility", "none": "complete"},
                    "Finds the fee in question.",
                ),
                _step(
                    "check_eligibility",
                    "Check eligibility",
                    [],
                    {"eligible": "refund", "not eligible": "tell_customer", "hardship": "person"},
                    "First fee in a year? Tenure? Hardship flag?",
                ),
                _step("refund", "Refund", ["issue_refund"], {"refunded": "tell_customer"}, "Refunds the fee."),
                _step(
                    "tell_customer",
                    "Tell the customer",
                    ["send_message"],
                    {"told": "complete", "complaint": "person"},
                    "Explains the outcome.",
                ),
            ],
        },
    },
    {
        "key": "address_change",
        "name": "Address change",
        "customer_goal": "I moved",
        "risk_level": "medium",
        "team": "Servicing team",
        "fallback_queue": "Servicing desk",
        "sla_minutes": 120,
        "spec": {
            "start": "verify_strong",
            "steps": [
                _step(
                    "verify_strong",
                    "Verify identity (one-time code)",
                    ["send_verification_code", "check_verification_code"],
                    {"verified": "validate_address", "3 wrong codes": "person"},
                    "One-time code to the phone on file.",
                ),
                _step(
                    "validate_address",
                    "Validate the address",
                    ["validate_address", "send_message"],
                    {"valid": "fraud_checks", "not found": "ask again"},
                    "Normalises the address, checks it exists.",
                ),
                _step(
                    "fraud_checks",
                    "Fraud checks",
                    ["lookup_account_changes"],
                    {"checked": "update"},
                    "Phone or email changed lately? Card ordered recently?",
                ),
                _step(
                    "update",
                    "Update the address",
                    ["update_address"],
                    {"updated": "confirm"},
                    "Writes the new address.",
                ),
                _step(
                    "confirm",
                    "Confirm",
                    ["send_letter", "send_message"],
                    {"confirmed": "complete"},
                    "Letter to the old address, message to the customer.",
                ),
            ],
        },
    },
]


@transaction.atomic
def install_definitions() -> list[JourneyDefinition]:
    installed = []
    for item in DEMO_DEFINITIONS:
        team, _ = Group.objects.get_or_create(name=item["team"])
        definition, _ = JourneyDefinition.objects.update_or_create(
            key=item["key"],
            defaults={
                "name": item["name"],
                "customer_goal": item["customer_goal"],
                "risk_level": item["risk_level"],
                "owning_team": team,
                "fallback_queue": item["fallback_queue"],
            },
        )
        latest = definition.current_version()
        if latest is None or latest.spec != item["spec"] or latest.sla_minutes != item["sla_minutes"]:
            DefinitionVersion.objects.create(
                definition=definition,
                number=(latest.number + 1) if latest else 1,
                spec=item["spec"],
                sla_minutes=item["sla_minutes"],
            )
        installed.append(definition)
    return installed
