"""Lost card: "My card is lost or stolen".

The journey's definition, the scripted agent's behaviour at each of its steps, the simulated
customer's side and the demo's default grants, in one place.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from journeys.agents.base import Proposal, Snapshot, Turn
from journeys.models import Journey
from journeys.models.domain import ExceptionKind

from ..agent import check_identity, handoff_on_failure, tell
from ..models import CoreCustomer
from .base import Reply, step, without_recent_changes

if TYPE_CHECKING:
    from ..simulator import Simulator

KEY = "lost_card"


DEFINITION: dict[str, Any] = {
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
            step(
                "verify_identity",
                "Verify identity",
                ["lookup_account"],
                {"verified": "block_card", "not verified": "person"},
                "Checks the customer.",
            ),
            step(
                "block_card",
                "Block the card",
                ["block_card"],
                {"blocked": "review_activity"},
                "Blocks the card before anything else.",
            ),
            step(
                "review_activity",
                "Review recent activity",
                ["lookup_transactions"],
                {"clean": "order_replacement", "suspicious": "order_replacement + linked dispute"},
                "Looks for transactions after the reported loss.",
            ),
            step(
                "order_replacement",
                "Order a replacement",
                ["order_card"],
                {"ordered": "tell_customer"},
                "Orders a card to the address on file.",
            ),
            step(
                "tell_customer",
                "Tell the customer",
                ["send_message"],
                {"told": "complete"},
                "Delivery date and temporary digital card.",
            ),
        ],
    },
}


# The owning team's standing rights on this journey, its approval limit, and whether its people
# may unmask the customer's sensitive fields (with a stated, audited reason).
GRANTS: dict[str, Any] = {
    "team": "Cards team",
    "perms": ["view_journeys", "take_over", "approve_actions", "annotate"],
    "approval_limit": "1000.00",
    "sensitive_data": True,
}


# --- the scripted agent, step by step -------------------------------------------------------


def verify_identity(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    return check_identity(s, "block_card")


def block_card(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    blocked = s.result("block_card")
    reason = "stolen" if s.request.get("reason") == "stolen" else "lost"
    if blocked is None:
        return Turn(
            [
                Proposal(
                    "block_card",
                    {"card": s.facts["card"], "reason": reason},
                    f"The card is {reason}: block it before anything else.",
                )
            ]
        )
    if blocked["status"] == "executed":
        return Turn(then="goto", goto="review_activity", note=f"Card •••• {s.facts.get('card_last4')} blocked.")
    return handoff_on_failure(s, "block_card", blocked, ExceptionKind.CORE_SYSTEM_ERROR)


def review_activity(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    listed = s.result("lookup_transactions")
    since = s.request.get("lost_at")
    if listed is None:
        params: dict[str, Any] = {"card": s.facts["card"], "days": 14}
        if since:
            params["since"] = since
        return Turn([Proposal("lookup_transactions", params, "Look for card use after the reported loss.")])
    if listed["status"] != "executed":
        return handoff_on_failure(s, "lookup_transactions", listed, ExceptionKind.CORE_SYSTEM_ERROR)
    suspicious = listed["result"]["transactions"] if since else []
    if suspicious:
        t = suspicious[0]
        return Turn(
            then="goto",
            goto="order_replacement",
            facts={"suspicious": [x["id"] for x in suspicious]},
            note=f"{len(suspicious)} transaction(s) after the loss; opening a linked card dispute.",
            spawn={
                "definition": "card_dispute",
                "data": {"merchant": t["description"], "amount": t["amount"], "kind": "fraud"},
                "message": f"Charges after my card went missing, e.g. {t['description']} {t['amount']}.",
            },
        )
    return Turn(then="goto", goto="order_replacement", note="No card use after the loss.")


def order_replacement(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    ordered = s.result("order_card")
    if ordered is None:
        expedited = bool(s.request.get("expedited", False))
        return Turn(
            [
                Proposal(
                    "order_card",
                    {
                        "account": s.facts["account"],
                        "address": s.facts["address"],
                        "expedited": expedited,
                        "premium": bool(s.facts.get("premium")),
                        "address_recently_changed": bool(s.facts.get("address_changed_recently")),
                    },
                    "Send a replacement card to the address on file" + (", expedited as asked." if expedited else "."),
                )
            ]
        )
    if ordered["status"] == "executed":
        return Turn(
            then="goto",
            goto="tell_customer",
            facts={"delivery": ordered["result"]["delivery_date"]},
            note=f"Replacement ordered, arriving {ordered['result']['delivery_date']}.",
        )
    if ordered["status"] in ("rejected", "expired"):
        return Turn(
            then="handoff",
            reason=f"The replacement order was {ordered['status']}: {ordered.get('reason', '')}",
            exception_kind=ExceptionKind.REPLACEMENT_REFUSED,
        )
    return handoff_on_failure(s, "order_card", ordered, ExceptionKind.CORE_SYSTEM_ERROR)


def tell_customer(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    return tell(
        s,
        f"Your card is blocked. A replacement arrives on {s.facts.get('delivery')}; a temporary digital "
        "card is in your app now.",
        "Delivery date and the temporary digital card.",
    )


STEPS = {
    "verify_identity": verify_identity,
    "block_card": block_card,
    "review_activity": review_activity,
    "order_replacement": order_replacement,
    "tell_customer": tell_customer,
}


# --- the simulated customer ----------------------------------------------------------------


# A card lost just after the address on file changed is rare (and needs approval: a known fraud
# pattern); so is asking for an expedited card as a customer without a premium account.
UNUSUAL_SHARE = 0.08
EXPEDITED_SHARE = 0.08


def ordinary_customers(customers):
    """Customers whose address on file did not change recently."""
    return without_recent_changes(customers, contact=False, card=False)


def customer_request(sim: Simulator, c: CoreCustomer) -> tuple[str, dict[str, Any]]:
    """What the customer says, and the journey's request data, when the simulator opens one."""
    reason = sim.rng.choice(["lost", "stolen"])
    hours = sim.rng.choice([2, 6, 30, 200])
    lost_at = timezone.now() - timedelta(hours=hours)
    return (
        f"My card was {reason} about {hours} hours ago.",
        {"reason": reason, "lost_at": lost_at.isoformat(), "expedited": sim.rng.random() < EXPEDITED_SHARE},
    )


def customer_reply(sim: Simulator, journey: Journey, facts: dict[str, Any]) -> Reply | None:
    """Nothing particular to this journey: the simulator's general answers apply."""
    return None
