"""The demo bank's starting policy (the README's demo section and docs/policy.md).

``install_demo_scopes`` is idempotent and never overwrites a rule an admin has since edited:
rules are created by name when missing and otherwise left alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from journeys.models import ActionType, JourneyDefinition, ProposedAction
from review.models import CumulativeLimit, PermissionScope, ScopeChange
from review.models.scopes import OnTimeout

E = ProposedAction.Effect
DEMO_TIMEOUT_MINUTES = 10
# The team that receives the demo's big refunds when nobody decides them in time. It holds no
# standing grant: an escalation delegates the one item to it (docs/policy.md, "Expiry").
ESCALATION_TEAM = "Escalations desk"

READS = [
    "lookup_account",
    "lookup_transactions",
    "lookup_fees",
    "lookup_account_changes",
    "validate_address",
    "check_verification_code",
]
HARMLESS = {
    "send_message": "Messages to the customer are allowed",
    "send_verification_code": "One-time codes are allowed",
    "send_letter": "Letters are allowed",
    "request_document": "Document requests are allowed",
    "open_case": "Opening a case is allowed",
    "escalate_risk": "Escalating to risk is allowed (it creates work for people, never money)",
    "block_card": "Card blocks are allowed",
}


def _scopes() -> list[dict[str, Any]]:
    scopes: list[dict[str, Any]] = [
        {"name": f"Reads are allowed: {key.replace('_', ' ')}", "action": key, "effect": E.ALLOW} for key in READS
    ]
    scopes += [{"name": name, "action": key, "effect": E.ALLOW} for key, name in HARMLESS.items()]
    scopes += [
        {
            "name": "Refunds up to 35.00 are automatic",
            "action": "issue_refund",
            "effect": E.ALLOW,
            "conditions": [{"param": "amount", "op": "<=", "value": "35.00"}],
        },
        {
            "name": "Refunds over 35.00 up to 500.00 need one approver",
            "action": "issue_refund",
            "effect": E.REQUIRE_APPROVAL,
            "conditions": [
                {"param": "amount", "op": ">", "value": "35.00"},
                {"param": "amount", "op": "<=", "value": "500.00"},
            ],
        },
        {
            "name": "Refunds over 500.00 up to 5,000.00 need two approvers",
            "action": "issue_refund",
            "effect": E.REQUIRE_TWO_APPROVALS,
            "on_timeout": OnTimeout.ESCALATE,
            "escalate_to": ESCALATION_TEAM,
            "conditions": [
                {"param": "amount", "op": ">", "value": "500.00"},
                {"param": "amount", "op": "<=", "value": "5000.00"},
            ],
        },
        {
            "name": "Refunds over 5,000.00 are denied",
            "action": "issue_refund",
            "effect": E.DENY,
            "conditions": [{"param": "amount", "op": ">", "value": "5000.00"}],
        },
        {"name": "Replacement cards are allowed", "action": "order_card", "effect": E.ALLOW},
        {
            "name": "Expedited replacement needs approval unless premium",
            "action": "order_card",
            "effect": E.REQUIRE_APPROVAL,
            "conditions": [
                {"param": "expedited", "op": "==", "value": True},
                {"param": "premium", "op": "!=", "value": True},
            ],
        },
        {
            "name": "Replacement to a recently changed address needs approval",
            "action": "order_card",
            "effect": E.REQUIRE_APPROVAL,
            "conditions": [{"param": "address_recently_changed", "op": "==", "value": True}],
        },
        {"name": "Address updates are allowed", "action": "update_address", "effect": E.ALLOW},
        {
            "name": "Address update after recent contact changes needs approval",
            "action": "update_address",
            "effect": E.REQUIRE_APPROVAL,
            "conditions": [{"param": "recent_changes", "op": "==", "value": True}],
        },
    ]
    return scopes


LIMITS: list[dict[str, Any]] = [
    {
        "name": "Refunds per customer: 300.00 per 30 days without approval",
        "action": "issue_refund",
        "measure": CumulativeLimit.Measure.AMOUNT,
        "subject": CumulativeLimit.Subject.CUSTOMER,
        "maximum": "300.00",
        "window_minutes": 30 * 24 * 60,
        "effect": E.REQUIRE_APPROVAL,
    },
    {
        "name": "Fee refunds per customer: at most 3 a year",
        "action": "issue_refund",
        "definition": "fee_refund",
        "measure": CumulativeLimit.Measure.COUNT,
        "subject": CumulativeLimit.Subject.CUSTOMER,
        "maximum": "3",
        "window_minutes": 365 * 24 * 60,
        "effect": E.DENY,
    },
    {
        "name": "Card blocks per agent: 200 an hour",
        "action": "block_card",
        "measure": CumulativeLimit.Measure.COUNT,
        "subject": CumulativeLimit.Subject.PROPOSER,
        "maximum": "200",
        "window_minutes": 60,
        "effect": E.REQUIRE_APPROVAL,
    },
]


@transaction.atomic
def install_demo_scopes() -> int:
    """Create the demo's scopes and limits that are missing; returns how many were created."""
    actions = {a.key: a for a in ActionType.objects.all()}
    definitions = {d.key: d for d in JourneyDefinition.objects.all()}
    created = 0
    for spec in _scopes():
        if spec["action"] not in actions:
            continue
        team = Group.objects.get_or_create(name=spec["escalate_to"])[0] if spec.get("escalate_to") else None
        scope, new = PermissionScope.objects.get_or_create(
            name=spec["name"],
            defaults={
                "action_type": actions[spec["action"]],
                "effect": spec["effect"],
                "conditions": spec.get("conditions", []),
                "approval_timeout_minutes": DEMO_TIMEOUT_MINUTES,
                "on_timeout": spec.get("on_timeout", OnTimeout.FALLBACK),
                "escalate_to": team,
                "description": "Demo bank default.",
            },
        )
        created += new
        # A rule installed before it named an escalation team gets the team, unless a person has
        # changed the rule since (then their choice stands).
        if (
            not new
            and team
            and scope.escalate_to_id is None
            and not ScopeChange.objects.filter(target=ScopeChange.Target.SCOPE, target_id=scope.pk).exists()
        ):
            PermissionScope.objects.filter(pk=scope.pk, escalate_to__isnull=True).update(escalate_to=team)
    for spec in LIMITS:
        if spec["action"] not in actions or ("definition" in spec and spec["definition"] not in definitions):
            continue
        _, new = CumulativeLimit.objects.get_or_create(
            name=spec["name"],
            defaults={
                "action_type": actions[spec["action"]],
                "definition": definitions.get(spec.get("definition", "")),
                "measure": spec["measure"],
                "subject": spec["subject"],
                "maximum": spec["maximum"],
                "window_minutes": spec["window_minutes"],
                "effect_when_exceeded": spec["effect"],
            },
        )
        created += new
    return created
