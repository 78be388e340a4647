"""Small builders for the governance tests: journeys and proposals without a worker."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count

from demo.models import CoreAccount, CoreTransaction
from journeys.lifecycle import journey as lifecycle
from journeys.models import Journey, ProposedAction
from journeys.services import journey_start, lock_journey, proposal_create


def start(definition: str = "fee_refund", customer: str = "CUST-00001", **request: Any) -> Journey:
    return journey_start(definition=definition, customer_ref=customer, request=request or {})


def propose(
    journey: Journey, action: str, params: dict[str, Any], *, agent=None, user=None, waiting: bool = True
) -> ProposedAction:
    """Propose as the runtime would (under the journey lock); a pending proposal leaves the
    journey waiting for approval, as the runtime's turn does."""
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        proposal = proposal_create(
            locked,
            action=action,
            params=params,
            explanation="Test proposal.",
            key=f"test-{uuid.uuid4().hex}",
            agent=agent if user is None else None,
            user=user,
        )
        if waiting and proposal.status == ProposedAction.Status.PENDING and locked.status == Journey.Status.RUNNING:
            lifecycle.wait_for_approval(locked)
    return proposal


def account_of(customer_ref: str) -> str:
    """The customer's own account in the demo bank (refunds may only go there)."""
    return CoreAccount.objects.filter(customer__ref=customer_ref).order_by("number").values_list("number", flat=True)[0]


def refund(journey: Journey, amount: str, *, agent=None, user=None) -> ProposedAction:
    return propose(
        journey,
        "issue_refund",
        {
            "account": account_of(journey.customer_ref),
            "amount": amount,
            "reason": "fee reversal",
            "customer": journey.customer_ref,
        },
        agent=agent,
        user=user,
    )


def disputable_charges(count: int = 1, minimum: str = "36.00", maximum: str = "300.00") -> list[CoreTransaction]:
    """Purchases of different customers whose merchant appears once on the card, within the
    amounts (stored negative), so a card dispute finds each without asking the customer."""
    purchases = CoreTransaction.objects.filter(kind=CoreTransaction.Kind.PURCHASE)
    singles = purchases.values("card_id", "description").annotate(n=Count("pk")).filter(n=1)
    single_keys = {(row["card_id"], row["description"]) for row in singles}
    found: dict[int, CoreTransaction] = {}
    for t in purchases.filter(amount__lte=-Decimal(minimum), amount__gte=-Decimal(maximum)).order_by("pk"):
        if (t.card_id, t.description) in single_keys and t.account_id not in found:
            found[t.account_id] = t
            if len(found) == count:
                return list(found.values())
    raise AssertionError("The demo bank has too few single disputable charges in that range.")


def disputable_charge(minimum: str = "36.00", maximum: str = "300.00") -> CoreTransaction:
    return disputable_charges(1, minimum, maximum)[0]


def start_dispute(t: CoreTransaction) -> Journey:
    return journey_start(
        definition="card_dispute",
        customer_ref=t.account.customer.ref,
        message="I don't know this charge.",
        request={
            "merchant": t.description,
            "amount": str(abs(t.amount)),
            "kind": "merchant_dispute",
            "identity_ok": True,
        },
    )
