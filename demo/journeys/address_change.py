"""Address change: "I moved".

The journey's definition, the scripted agent's behaviour at each of its steps, the simulated
customer's side and the demo's default grants, in one place.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from journeys.agents.base import Proposal, Snapshot, Turn
from journeys.models import Journey
from journeys.models.domain import ExceptionKind

from ..agent import handoff_on_failure, say
from ..models import CoreCustomer, CoreVerificationCode
from .base import Reply, step, without_recent_changes

if TYPE_CHECKING:
    from ..simulator import Simulator

KEY = "address_change"


VALID_STREETS = ["Station Road", "Church Lane", "Park Avenue", "Orchard Way", "Harbour View"]


DEFINITION: dict[str, Any] = {
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
            step(
                "verify_strong",
                "Verify identity (one-time code)",
                ["send_verification_code", "check_verification_code"],
                {"verified": "validate_address", "3 wrong codes": "person"},
                "One-time code to the phone on file.",
            ),
            step(
                "validate_address",
                "Validate the address",
                ["validate_address", "send_message"],
                {"valid": "fraud_checks", "not found": "ask again"},
                "Normalises the address, checks it exists.",
            ),
            step(
                "fraud_checks",
                "Fraud checks",
                ["lookup_account_changes"],
                {"checked": "update"},
                "Phone or email changed lately? Card ordered recently?",
            ),
            step(
                "update",
                "Update the address",
                ["update_address"],
                {"updated": "confirm"},
                "Writes the new address.",
            ),
            step(
                "confirm",
                "Confirm",
                ["send_letter", "send_message"],
                {"confirmed": "complete"},
                "Letter to the old address, message to the customer.",
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


def verify_strong(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    code = (s.reply or {}).get("data", {}).get("code")
    state = s.facts.get("verify_state")
    if state is None:
        return Turn(
            [
                Proposal(
                    "send_verification_code",
                    {"customer": s.customer, "channel": "sms"},
                    "Address changes need strong identity: send a one-time code to the phone on file.",
                )
            ],
            then="wait_customer",
            facts={"verify_state": "code_sent"},
        )
    if code:
        return Turn(
            [
                Proposal(
                    "check_verification_code",
                    {"customer": s.customer, "code": str(code)},
                    "Check the code the customer typed.",
                )
            ],
            facts={"verify_state": "checking"},
        )
    checked = s.result("check_verification_code")
    if state == "checking" and checked and checked["status"] == "executed":
        if checked["result"]["valid"]:
            return Turn(
                then="goto",
                goto="validate_address",
                facts={"verify_state": "verified"},
                note="One-time code verified.",
            )
        wrong = int(s.facts.get("wrong_codes", 0)) + 1
        if wrong >= 3:
            return Turn(
                then="handoff",
                reason="The one-time code was wrong three times.",
                exception_kind=ExceptionKind.VERIFICATION_FAILED,
                facts={"wrong_codes": wrong},
            )
        return Turn(
            [
                say(
                    s,
                    "That code didn't match. Please check the text message and try again.",
                    f"Wrong code ({wrong} of 3).",
                )
            ],
            then="wait_customer",
            facts={"wrong_codes": wrong, "verify_state": "code_sent"},
        )
    return Turn(
        [say(s, "Please reply with the six-digit code we sent to your phone.", "Still waiting for the code.")],
        then="wait_customer",
        facts={"verify_state": "code_sent"},
    )


def validate_address(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    given = (s.reply or {}).get("data", {}).get("address")
    state = s.facts.get("address_state")
    if state is None or given:
        address = given or s.request.get("new_address", "")
        if not address:
            return Turn(
                [say(s, "What is your new address?", "The request did not include the address.")],
                then="wait_customer",
                facts={"address_state": "asked"},
            )
        return Turn(
            [Proposal("validate_address", {"address": address}, "Normalise the new address and check that it exists.")],
            facts={"address_state": "validating"},
        )
    validated = s.result("validate_address")
    if state == "validating" and validated and validated["status"] == "executed":
        if validated["result"]["exists"]:
            return Turn(
                then="goto",
                goto="fraud_checks",
                facts={"new_address": validated["result"]["address"], "address_state": "valid"},
                note=f"Address found: {validated['result']['address']}.",
            )
        tries = int(s.facts.get("address_tries", 0)) + 1
        if tries >= 3:
            return Turn(
                then="handoff",
                reason="The new address could not be found after three tries.",
                exception_kind=ExceptionKind.ADDRESS_NOT_FOUND,
                facts={"address_tries": tries},
            )
        return Turn(
            [
                say(
                    s,
                    "I couldn't find that address. Could you send it again, with the street name and postcode?",
                    "The address does not exist in the postal file.",
                )
            ],
            then="wait_customer",
            facts={"address_tries": tries, "address_state": "asked"},
        )
    return Turn(
        [say(s, "Please send your new address.", "Still waiting for the address.")],
        then="wait_customer",
        facts={"address_state": "asked"},
    )


def fraud_checks(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    checked = s.result("lookup_account_changes")
    if checked is None:
        return Turn(
            [
                Proposal(
                    "lookup_account_changes",
                    {"customer": s.customer, "days": 30},
                    "An address change right after a phone or email change is a known fraud pattern.",
                )
            ]
        )
    if checked["status"] != "executed":
        return handoff_on_failure(s, "lookup_account_changes", checked, ExceptionKind.CORE_SYSTEM_ERROR)
    changes = checked["result"]["recent_changes"]
    note = f"Recent changes: {', '.join(changes)}." if changes else "No recent changes to contact details."
    return Turn(then="goto", goto="update", facts={"recent_changes": changes}, note=note)


def update(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    updated = s.result("update_address")
    if updated is None:
        changes = s.facts.get("recent_changes", [])
        return Turn(
            [
                Proposal(
                    "update_address",
                    {"customer": s.customer, "address": s.facts["new_address"], "recent_changes": bool(changes)},
                    "Write the verified new address"
                    + (f" (recent changes: {', '.join(changes)})." if changes else "."),
                )
            ]
        )
    if updated["status"] == "executed":
        return Turn(
            then="goto",
            goto="confirm",
            facts={"old_address": updated["result"]["old_address"]},
            note="Address updated.",
        )
    if updated["status"] in ("rejected", "expired"):
        return Turn(
            then="handoff",
            reason=f"The address update was {updated['status']}: {updated.get('reason', '')}",
            exception_kind=ExceptionKind.UPDATE_REFUSED,
        )
    return handoff_on_failure(s, "update_address", updated, ExceptionKind.CORE_SYSTEM_ERROR)


def confirm(s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
    letter, told = s.result("send_letter"), s.result("send_message")
    if letter is None and told is None:
        return Turn(
            [
                Proposal(
                    "send_letter",
                    {
                        "customer": s.customer,
                        "address": s.facts.get("old_address", ""),
                        "text": "Your address with us was changed. If this wasn't you, call us.",
                    },
                    "A letter to the old address lets the real customer object if this was fraud.",
                ),
                say(
                    s,
                    f"Done: your address is now {s.facts['new_address']}. We've sent a confirmation letter "
                    "to your old address too.",
                    "Confirm the change to the customer.",
                ),
            ]
        )
    for name, outcome in (("send_letter", letter), ("send_message", told)):
        if outcome is None or outcome["status"] != "executed":
            return handoff_on_failure(s, name, outcome or {"status": "missing"}, ExceptionKind.MESSAGE_NOT_SENT)
    return Turn(then="complete", note="Address change confirmed by letter and message.")


STEPS = {
    "verify_strong": verify_strong,
    "validate_address": validate_address,
    "fraud_checks": fraud_checks,
    "update": update,
    "confirm": confirm,
}


# --- the simulated customer ----------------------------------------------------------------


# Most people who move have not just changed their phone, email or card: an address change right
# after one is the fraud pattern the approval rule is for, and it is rare.
UNUSUAL_SHARE = 0.08


def ordinary_customers(customers):
    """Customers for whom an address change is routine: no recent change to their contact details
    or cards."""
    return without_recent_changes(customers)


def customer_request(sim: Simulator, c: CoreCustomer) -> tuple[str, dict[str, Any]]:
    """What the customer says, and the journey's request data, when the simulator opens one."""
    if sim.rng.random() < 0.2:
        address = f"{sim.rng.randint(1, 99)} Nowhere Crescent, Springfield"
    else:
        street = sim.rng.choice(VALID_STREETS)
        address = f"{sim.rng.randint(1, 99)} {street}, Springfield SP{sim.rng.randint(1, 9)} 2CD"
    return f"I moved to {address}.", {"new_address": address}


def customer_reply(sim: Simulator, journey: Journey, facts: dict[str, Any]) -> Reply | None:
    """The customer reads out the one-time code (now and then a wrong one) or corrects the address."""
    if journey.current_step == "verify_strong":
        latest = CoreVerificationCode.objects.filter(customer__ref=journey.customer_ref).first()
        code = latest.code if latest and sim.rng.random() > 0.15 else "000000"
        return f"The code is {code}.", {"code": code}, "reply"
    if journey.current_step == "validate_address":
        address = f"{sim.rng.randint(1, 99)} {sim.rng.choice(VALID_STREETS)}, Springfield SP1 2CD"
        return f"Sorry, it's {address}.", {"address": address}, "reply"
    return None
