"""Card dispute: "I don't recognise this charge".

The journey's definition, the scripted agent's behaviour at each of its steps, the simulated
customer's side and the demo's default grants, in one place.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from journeys.agents.base import Proposal, Snapshot, Turn
from journeys.models import Journey
from journeys.models.domain import ExceptionKind

from ..agent import CONFIDENCE_BAR, check_identity, handoff_on_failure, say, tell
from ..models import CoreCustomer, CoreTransaction
from .base import Reply, step

if TYPE_CHECKING:
    from ..simulator import Simulator

KEY = "card_dispute"
# Most disputed card charges are small (subscriptions, duplicates), which the scopes let through:
# the customers who dispute are mostly those with a small charge on their card.
SMALL_DISPUTE_SHARE = 0.85
SMALL_CHARGE = 35
UNUSUAL_SHARE = 0.1


def ordinary_customers(customers):
    """Customers with a small card charge they might not recognise."""
    return customers.filter(
        accounts__transactions__kind=CoreTransaction.Kind.PURCHASE,
        accounts__transactions__amount__gte=-SMALL_CHARGE,
    )


DEFINITION: dict[str, Any] = {
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
            step(
                "verify_identity",
                "Verify identity",
                ["lookup_account"],
                {"verified": "find_transaction", "not verified": "person"},
                "Checks the customer against the core bank.",
            ),
            step(
                "find_transaction",
                "Find the transaction",
                ["lookup_transactions", "send_message"],
                {"found": "classify", "several": "ask the customer", "none": "person"},
                "Matches the customer's description to a recent card transaction.",
            ),
            step(
                "classify",
                "Classify",
                [],
                {"classified": "provisional_credit", "low confidence": "person"},
                "Fraud, merchant dispute, duplicate charge or subscription, with confidence.",
            ),
            step(
                "provisional_credit",
                "Provisional credit",
                ["issue_refund"],
                {"credited": "block_card"},
                "Credits the disputed amount while the case runs.",
            ),
            step(
                "block_card",
                "Block the card (fraud only)",
                ["block_card"],
                {"blocked or not fraud": "open_case"},
                "Stops further fraud.",
            ),
            step(
                "open_case",
                "Open the case",
                ["open_case"],
                {"opened": "tell_customer"},
                "Files a dispute case with the card network.",
            ),
            step(
                "tell_customer",
                "Tell the customer",
                ["send_message"],
                {"told": "complete"},
                "Explains what happens next and when.",
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
    return check_identity(s, "find_transaction")


def find_transaction(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    listed = s.result("lookup_transactions")
    if listed is None:
        return Turn(
            [
                Proposal(
                    "lookup_transactions",
                    {"card": s.facts["card"], "days": 60},
                    "List the last 60 days of card transactions to find the one the customer means.",
                )
            ]
        )
    if listed["status"] != "executed":
        return handoff_on_failure(s, "lookup_transactions", listed, ExceptionKind.CORE_SYSTEM_ERROR)
    transactions = listed["result"]["transactions"]
    choice = (s.reply or {}).get("data", {}).get("choice")
    if choice is not None:
        chosen = [t for t in transactions if str(t["id"]) == str(choice)]
    else:
        hint = str(s.request.get("merchant", "")).lower()
        chosen = [t for t in transactions if hint and hint in t["description"].lower()]
    if len(chosen) == 1:
        t = chosen[0]
        return Turn(
            then="goto",
            goto="classify",
            facts={"transaction": t},
            note=f"The disputed charge is {t['description']} for {t['amount']} on {t['at'][:10]}.",
        )
    if len(chosen) > 1 and s.facts.get("asked_choice") and s.reply is None:
        # Asked already and no answer yet (a retried message can bring the agent back before the
        # customer replies): keep waiting rather than give up on the dispute.
        return Turn(then="wait_customer", note="Waiting for the customer to say which charge they mean.")
    if len(chosen) > 1 and not s.facts.get("asked_choice"):
        options = "; ".join(f"[{t['id']}] {t['description']} {t['amount']} on {t['at'][:10]}" for t in chosen[:5])
        return Turn(
            [
                say(
                    s,
                    f"I found several charges that could match: {options}. Which one do you mean?",
                    "Several transactions match the description; the customer must choose.",
                )
            ],
            then="wait_customer",
            facts={"asked_choice": True, "candidates": [t["id"] for t in chosen[:5]]},
        )
    return Turn(
        then="handoff",
        reason="The disputed transaction could not be identified.",
        exception_kind=ExceptionKind.TRANSACTION_NOT_FOUND,
    )


def classify(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    kinds = ["fraud", "merchant_dispute", "duplicate_charge", "subscription"]
    kind = s.request.get("kind") if s.request.get("kind") in kinds else rng.choice(kinds)
    if rng.random() < float(cfg.get("low_confidence_rate", 0)):
        confidence = round(rng.uniform(0.40, 0.69), 2)
    else:
        confidence = round(rng.uniform(0.75, 0.99), 2)
    if confidence < CONFIDENCE_BAR:
        return Turn(
            then="handoff",
            confidence=confidence,
            reason=f"Classification '{kind}' has confidence {confidence:.2f}, below {CONFIDENCE_BAR}.",
            exception_kind=ExceptionKind.LOW_CONFIDENCE,
            facts={"classification": kind, "confidence": confidence},
        )
    return Turn(
        then="goto",
        goto="provisional_credit",
        confidence=confidence,
        facts={"classification": kind, "confidence": confidence},
        note=f"Classified as {kind.replace('_', ' ')} (confidence {confidence:.2f}).",
    )


def provisional_credit(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    credit = s.result("issue_refund")
    if credit is None:
        amount = Decimal(s.facts["transaction"]["amount"])
        if rng.random() < float(cfg.get("wrong_rate", 0)):
            amount *= 2  # a wrong proposal the approver should catch
        return Turn(
            [
                Proposal(
                    "issue_refund",
                    {
                        "account": s.facts["account"],
                        "amount": str(amount.quantize(Decimal("0.01"))),
                        "reason": "provisional credit",
                        "customer": s.customer,
                    },
                    f"Credit the disputed {s.facts['transaction']['description']} charge while the dispute runs.",
                    confidence=s.facts.get("confidence"),
                )
            ]
        )
    if credit["status"] == "executed":
        return Turn(
            then="goto",
            goto="block_card",
            facts={"credited": credit["result"]["refunded"]},
            note=f"Provisional credit of {credit['result']['refunded']} issued.",
        )
    if credit["status"] in ("rejected", "expired"):
        return Turn(
            then="goto",
            goto="block_card",
            facts={"credited": None},
            note=f"No provisional credit ({credit['status']}: {credit.get('reason', '')}); the case goes on.",
        )
    return handoff_on_failure(s, "issue_refund", credit, ExceptionKind.CORE_SYSTEM_ERROR)


def block_card(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    if s.facts.get("classification") != "fraud":
        return Turn(then="goto", goto="open_case", note="Not fraud: the card stays active.")
    blocked = s.result("block_card")
    if blocked is None:
        return Turn(
            [
                Proposal(
                    "block_card",
                    {"card": s.facts["card"], "reason": "fraud"},
                    "The charge looks fraudulent; block the card to stop further fraud.",
                )
            ]
        )
    if blocked["status"] == "executed":
        return Turn(then="goto", goto="open_case", note="Card blocked.")
    return handoff_on_failure(s, "block_card", blocked, ExceptionKind.CORE_SYSTEM_ERROR)


def open_case(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    opened = s.result("open_case")
    if opened is None:
        t = s.facts["transaction"]
        return Turn(
            [
                Proposal(
                    "open_case",
                    {"customer": s.customer, "kind": "dispute", "transaction": str(t["id"]), "amount": t["amount"]},
                    "File the dispute with the card network so the merchant must answer.",
                )
            ]
        )
    if opened["status"] == "executed":
        return Turn(
            then="goto",
            goto="tell_customer",
            facts={"case": opened["result"]["case"]},
            note=f"Dispute case {opened['result']['case']} opened.",
        )
    return handoff_on_failure(s, "open_case", opened, ExceptionKind.CORE_SYSTEM_ERROR)


def tell_customer(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    credited = s.facts.get("credited")
    credit_line = f"We have credited {credited} to your account while we investigate. " if credited else ""
    return tell(
        s,
        f"{credit_line}Your dispute is case {s.facts.get('case')}. The merchant has up to 30 days to "
        "answer; we will write to you as soon as the network decides.",
        "Explain what happens next and when.",
    )


STEPS = {
    "verify_identity": verify_identity,
    "find_transaction": find_transaction,
    "classify": classify,
    "provisional_credit": provisional_credit,
    "block_card": block_card,
    "open_case": open_case,
    "tell_customer": tell_customer,
}


# --- the simulated customer ----------------------------------------------------------------


def customer_request(sim: Simulator, c: CoreCustomer) -> tuple[str, dict[str, Any]]:
    """What the customer says, and the journey's request data, when the simulator opens one."""
    txns = list(CoreTransaction.objects.filter(account__customer=c, kind=CoreTransaction.Kind.PURCHASE)[:30])
    small = [t for t in txns if abs(t.amount) <= SMALL_CHARGE]
    t = sim.rng.choice(small if small and sim.rng.random() < SMALL_DISPUTE_SHARE else txns)
    kind = sim.rng.choice(["fraud", "merchant_dispute", "duplicate_charge", "subscription"])
    return (
        f"I don't recognise a charge from {t.description} of {abs(t.amount)}.",
        {"merchant": t.description, "amount": str(abs(t.amount)), "kind": kind},
    )


def customer_reply(sim: Simulator, journey: Journey, facts: dict[str, Any]) -> Reply | None:
    """The customer points at one of several matching charges."""
    if journey.current_step == "find_transaction":
        candidates = facts.get("candidates") or []
        if candidates:
            # The customer knows which charge they meant: the one of the amount they named.
            amount = str(journey.context.get("request", {}).get("amount") or "")
            meant = next(
                (
                    pk
                    for pk, value in CoreTransaction.objects.filter(pk__in=candidates).values_list("pk", "amount")
                    if amount and f"{abs(value):.2f}" == amount
                ),
                candidates[0],
            )
            return f"It's the one with reference {meant}.", {"choice": meant}, "reply"
    return None
