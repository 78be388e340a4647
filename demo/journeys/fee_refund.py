"""Fee refund: "Why was I charged this fee?".

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

from ..agent import check_identity, handoff_on_failure, say, tell
from ..models import CoreCustomer
from .base import Reply, everyone, step

if TYPE_CHECKING:
    from ..simulator import Simulator

KEY = "fee_refund"
UNUSUAL_SHARE = 0.0
ordinary_customers = everyone


DEFINITION: dict[str, Any] = {
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
            step(
                "verify_identity",
                "Verify identity",
                ["lookup_account"],
                {"verified": "find_fee", "not verified": "person"},
                "Checks the customer.",
            ),
            step(
                "find_fee",
                "Find the fee",
                ["lookup_fees", "send_message"],
                {"found": "check_eligibility", "none": "complete"},
                "Finds the fee in question.",
            ),
            step(
                "check_eligibility",
                "Check eligibility",
                [],
                {"eligible": "refund", "not eligible": "tell_customer", "hardship": "person"},
                "First fee in a year? Tenure? Hardship flag?",
            ),
            step("refund", "Refund", ["issue_refund"], {"refunded": "tell_customer"}, "Refunds the fee."),
            step(
                "tell_customer",
                "Tell the customer",
                ["send_message"],
                {"told": "complete", "complaint": "person"},
                "Explains the outcome.",
            ),
        ],
    },
}


# The owning team's standing rights on this journey, its approval limit, and whether its people
# may unmask the customer's sensitive fields (with a stated, audited reason).
GRANTS: dict[str, Any] = {
    "team": "Servicing team",
    "perms": ["view_journeys", "take_over", "approve_actions", "annotate"],
    "approval_limit": "500.00",
    "sensitive_data": True,
}


# --- the scripted agent, step by step -------------------------------------------------------


def verify_identity(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    return check_identity(s, "find_fee")


def find_fee(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    listed = s.result("lookup_fees")
    if listed is None:
        return Turn(
            [
                Proposal(
                    "lookup_fees",
                    {"account": s.facts["account"], "days": 90},
                    "Find the fee the customer is asking about.",
                )
            ]
        )
    if listed["status"] != "executed":
        return handoff_on_failure(s, "lookup_fees", listed, ExceptionKind.CORE_SYSTEM_ERROR)
    fees = listed["result"]["fees"]
    if not fees:
        told = s.result("send_message")
        if told is None:
            return Turn(
                [
                    say(
                        s,
                        "I can't find any fee on your account in the last 90 days. If you see one "
                        "in your statement, reply with its date and we'll look again.",
                        "No fee found in 90 days; explain and close.",
                    )
                ]
            )
        return Turn(then="complete", note="No fee found; the customer was told.")
    wanted = s.request.get("fee_kind")
    fee = next((f for f in fees if f["kind"] == wanted), fees[0])
    return Turn(
        then="goto",
        goto="check_eligibility",
        facts={
            "fee": fee,
            "fee_refunds_last_year": listed["result"]["fee_refunds_last_year"],
            "fees_last_year": listed["result"]["fees_last_year"],
        },
        note=f"The fee is {fee['description']} of {fee['amount']} on {fee['at'][:10]}.",
    )


def check_eligibility(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    if s.facts.get("hardship"):
        return Turn(
            then="handoff",
            reason="The customer carries a hardship flag; a person must look.",
            exception_kind=ExceptionKind.VULNERABLE_CUSTOMER,
        )
    since = s.facts.get("customer_since", "2000-01-01")
    tenure_years = 2026 - int(since[:4])
    first_fee = int(s.facts.get("fees_last_year", 0)) <= 1
    eligible = first_fee or tenure_years >= 2
    why = "first fee in 12 months" if first_fee else f"customer for {tenure_years} years"
    if not eligible:
        return Turn(
            then="goto",
            goto="tell_customer",
            facts={"eligible": False},
            note="Not eligible: repeated fees and a short tenure.",
        )
    return Turn(then="goto", goto="refund", facts={"eligible": True}, note=f"Eligible for a goodwill refund ({why}).")


def refund(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    refunded = s.result("issue_refund")
    if refunded is None:
        amount = Decimal(s.facts["fee"]["amount"])
        if rng.random() < float(cfg.get("wrong_rate", 0)):
            amount *= 10
        return Turn(
            [
                Proposal(
                    "issue_refund",
                    {
                        "account": s.facts["account"],
                        "amount": str(amount.quantize(Decimal("0.01"))),
                        "reason": "fee reversal",
                        "customer": s.customer,
                    },
                    f"Reverse the {s.facts['fee']['description']} as a goodwill gesture.",
                )
            ]
        )
    if refunded["status"] == "executed":
        return Turn(
            then="goto",
            goto="tell_customer",
            facts={"refunded": refunded["result"]["refunded"]},
            note=f"Refunded {refunded['result']['refunded']}.",
        )
    if refunded["status"] in ("rejected", "expired"):
        return Turn(
            then="goto",
            goto="tell_customer",
            facts={"refunded": None, "eligible": False},
            note=f"Refund {refunded['status']}: {refunded.get('reason', '')}",
        )
    return handoff_on_failure(s, "issue_refund", refunded, ExceptionKind.CORE_SYSTEM_ERROR)


def tell_customer(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    if s.facts.get("refunded"):
        text = (
            f"We've refunded the {s.facts['fee']['description']} of {s.facts['refunded']}. "
            "It shows in your account today."
        )
    else:
        text = (
            "We looked at the fee and it was charged correctly under your account terms, "
            "so we can't refund it this time."
        )
    return tell(s, text, "Tell the customer the outcome of the fee review.")


STEPS = {
    "verify_identity": verify_identity,
    "find_fee": find_fee,
    "check_eligibility": check_eligibility,
    "refund": refund,
    "tell_customer": tell_customer,
}


# --- the simulated customer ----------------------------------------------------------------


def customer_request(sim: Simulator, c: CoreCustomer) -> tuple[str, dict[str, Any]]:
    """What the customer says, and the journey's request data, when the simulator opens one."""
    return "Why was I charged this fee? I'd like it refunded.", {}


def customer_reply(sim: Simulator, journey: Journey, facts: dict[str, Any]) -> Reply | None:
    """Nothing particular to this journey: the simulator's general answers apply."""
    return None
