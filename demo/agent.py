"""The scripted agent: deterministic, the embedded default and the test agent.

Each step is a small function of the snapshot. It proposes the step's action, reads the
result on its next turn, and moves on. ``Agent.config`` makes it imperfect on purpose, so the
demo has exceptions to look at; its choices are seeded by journey and turn, so a run repeats:

- ``error_rate``: share of turns that fail transiently (the runtime retries, then falls back)
- ``low_confidence_rate``: share of classifications below the 0.7 confidence bar
- ``wrong_rate``: share of refunds proposed at a wrong amount (a supervisor should catch it)
- ``fail_steps``: steps at which every turn fails (tests)
- ``crash_steps``: steps at which the agent kills its own worker process (tests)
- ``think_seconds``: how long each turn takes (tests, demo pacing)
"""

from __future__ import annotations

import os
import random
import signal
import time
from decimal import Decimal
from typing import Any

from journeys.agents.base import AgentError, AgentTransientError, Proposal, Snapshot, Turn
from journeys.models.domain import ExceptionKind

CONFIDENCE_BAR = 0.7


class ScriptedAgent:
    def next_turn(self, s: Snapshot) -> Turn:
        cfg = s.agent_config
        rng = random.Random(f"{s.journey_id}:{s.turn}")
        if cfg.get("think_seconds"):
            time.sleep(float(cfg["think_seconds"]))
        if s.step in cfg.get("crash_steps", []):
            os.kill(os.getpid(), signal.SIGKILL)
        if s.step in cfg.get("fail_steps", []):
            raise AgentTransientError(f"The agent failed at '{s.step}' (configured to fail there).")
        if rng.random() < float(cfg.get("error_rate", 0)):
            raise AgentTransientError("The agent's model timed out.")

        reply = s.reply or {}
        if reply.get("intent") == "complaint":
            return Turn(
                then="handoff",
                reason=f"The customer complained: “{reply.get('text', '')}”",
                exception_kind=ExceptionKind.CUSTOMER_COMPLAINT,
                note="The customer is unhappy; a person should take this conversation.",
            )
        if reply.get("intent") == "abandon":
            return Turn(then="abandon", note="The customer left the conversation.")

        handler = getattr(self, f"{s.definition}__{s.step}", None)
        if handler is None:
            raise AgentError(f"The scripted agent has no behaviour for {s.definition}/{s.step}.")
        return handler(s, rng, cfg)

    # --- shared steps ----------------------------------------------------------------------
    def _verify_identity(self, s: Snapshot, next_step: str) -> Turn:
        looked_up = s.result("lookup_account")
        if looked_up is None:
            return Turn(
                [
                    Proposal(
                        "lookup_account",
                        {"customer": s.customer},
                        "Confirm who we are talking to before touching the account.",
                    )
                ],
                note="Checking the customer's identity against the core bank.",
            )
        if looked_up["status"] != "executed":
            return _handoff_on_failure(s, "lookup_account", looked_up, ExceptionKind.IDENTITY_NOT_VERIFIED)
        account = looked_up["result"]
        ok = bool(s.request.get("identity_ok", True))
        reply = s.reply or {}
        if "identity_ok" in reply.get("data", {}):
            ok = bool(reply["data"]["identity_ok"])
        if ok:
            # The card in use; after a loss that is the blocked one (its charges are the ones a
            # customer disputes), not the replacement still in the post.
            active_cards = (
                [c for c in account["cards"] if c["status"] == "active"]
                or [c for c in account["cards"] if c["status"] == "blocked"]
                or account["cards"]
            )
            return Turn(
                then="goto",
                goto=next_step,
                note=f"Identity verified for {account['name']}.",
                facts={
                    "account": account["account"],
                    "card": active_cards[0]["card"] if active_cards else None,
                    "card_last4": active_cards[0]["last4"] if active_cards else None,
                    "premium": account["premium"],
                    "hardship": account["hardship"],
                    "address": account["address"],
                    "address_changed_recently": account.get("address_changed_recently", False),
                    "customer_since": account["customer_since"],
                    "name": account["name"],
                },
            )
        attempts = int(s.facts.get("identity_attempts", 0)) + 1
        if attempts >= 2:
            return Turn(
                then="handoff",
                reason="Identity could not be verified after two attempts.",
                exception_kind=ExceptionKind.IDENTITY_NOT_VERIFIED,
                facts={"identity_attempts": attempts},
            )
        return Turn(
            [
                _say(
                    s,
                    "I couldn't match those details. Please confirm your date of birth and the "
                    "last four digits of your card.",
                    "The details did not match the core bank; ask once more.",
                )
            ],
            then="wait_customer",
            facts={"identity_attempts": attempts},
        )

    def _tell(self, s: Snapshot, text: str, why: str) -> Turn:
        told = s.result("send_message")
        if told is None:
            return Turn([_say(s, text, why)])
        if told["status"] != "executed":
            return _handoff_on_failure(s, "send_message", told, ExceptionKind.MESSAGE_NOT_SENT)
        return Turn(then="complete", note="The customer has been told the outcome.")

    # --- card dispute ----------------------------------------------------------------------
    def card_dispute__verify_identity(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        return self._verify_identity(s, "find_transaction")

    def card_dispute__find_transaction(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
            return _handoff_on_failure(s, "lookup_transactions", listed, ExceptionKind.CORE_SYSTEM_ERROR)
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
        if len(chosen) > 1 and not s.facts.get("asked_choice"):
            options = "; ".join(f"[{t['id']}] {t['description']} {t['amount']} on {t['at'][:10]}" for t in chosen[:5])
            return Turn(
                [
                    _say(
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

    def card_dispute__classify(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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

    def card_dispute__provisional_credit(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return _handoff_on_failure(s, "issue_refund", credit, ExceptionKind.CORE_SYSTEM_ERROR)

    def card_dispute__block_card(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return _handoff_on_failure(s, "block_card", blocked, ExceptionKind.CORE_SYSTEM_ERROR)

    def card_dispute__open_case(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return _handoff_on_failure(s, "open_case", opened, ExceptionKind.CORE_SYSTEM_ERROR)

    def card_dispute__tell_customer(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        credited = s.facts.get("credited")
        credit_line = f"We have credited {credited} to your account while we investigate. " if credited else ""
        return self._tell(
            s,
            f"{credit_line}Your dispute is case {s.facts.get('case')}. The merchant has up to 30 days to "
            "answer; we will write to you as soon as the network decides.",
            "Explain what happens next and when.",
        )

    # --- lost or stolen card ---------------------------------------------------------------
    def lost_card__verify_identity(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        return self._verify_identity(s, "block_card")

    def lost_card__block_card(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return _handoff_on_failure(s, "block_card", blocked, ExceptionKind.CORE_SYSTEM_ERROR)

    def lost_card__review_activity(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        listed = s.result("lookup_transactions")
        since = s.request.get("lost_at")
        if listed is None:
            params: dict[str, Any] = {"card": s.facts["card"], "days": 14}
            if since:
                params["since"] = since
            return Turn([Proposal("lookup_transactions", params, "Look for card use after the reported loss.")])
        if listed["status"] != "executed":
            return _handoff_on_failure(s, "lookup_transactions", listed, ExceptionKind.CORE_SYSTEM_ERROR)
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

    def lost_card__order_replacement(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
                        "Send a replacement card to the address on file"
                        + (", expedited as asked." if expedited else "."),
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
        return _handoff_on_failure(s, "order_card", ordered, ExceptionKind.CORE_SYSTEM_ERROR)

    def lost_card__tell_customer(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        return self._tell(
            s,
            f"Your card is blocked. A replacement arrives on {s.facts.get('delivery')}; a temporary digital "
            "card is in your app now.",
            "Delivery date and the temporary digital card.",
        )

    # --- fee refund ------------------------------------------------------------------------
    def fee_refund__verify_identity(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        return self._verify_identity(s, "find_fee")

    def fee_refund__find_fee(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
            return _handoff_on_failure(s, "lookup_fees", listed, ExceptionKind.CORE_SYSTEM_ERROR)
        fees = listed["result"]["fees"]
        if not fees:
            told = s.result("send_message")
            if told is None:
                return Turn(
                    [
                        _say(
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

    def fee_refund__check_eligibility(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return Turn(
            then="goto", goto="refund", facts={"eligible": True}, note=f"Eligible for a goodwill refund ({why})."
        )

    def fee_refund__refund(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return _handoff_on_failure(s, "issue_refund", refunded, ExceptionKind.CORE_SYSTEM_ERROR)

    def fee_refund__tell_customer(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return self._tell(s, text, "Tell the customer the outcome of the fee review.")

    # --- address change --------------------------------------------------------------------
    def address_change__verify_strong(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
                    _say(
                        s,
                        "That code didn't match. Please check the text message and try again.",
                        f"Wrong code ({wrong} of 3).",
                    )
                ],
                then="wait_customer",
                facts={"wrong_codes": wrong, "verify_state": "code_sent"},
            )
        return Turn(
            [_say(s, "Please reply with the six-digit code we sent to your phone.", "Still waiting for the code.")],
            then="wait_customer",
            facts={"verify_state": "code_sent"},
        )

    def address_change__validate_address(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
        given = (s.reply or {}).get("data", {}).get("address")
        state = s.facts.get("address_state")
        if state is None or given:
            address = given or s.request.get("new_address", "")
            if not address:
                return Turn(
                    [_say(s, "What is your new address?", "The request did not include the address.")],
                    then="wait_customer",
                    facts={"address_state": "asked"},
                )
            return Turn(
                [
                    Proposal(
                        "validate_address", {"address": address}, "Normalise the new address and check that it exists."
                    )
                ],
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
                    _say(
                        s,
                        "I couldn't find that address. Could you send it again, with the street name and postcode?",
                        "The address does not exist in the postal file.",
                    )
                ],
                then="wait_customer",
                facts={"address_tries": tries, "address_state": "asked"},
            )
        return Turn(
            [_say(s, "Please send your new address.", "Still waiting for the address.")],
            then="wait_customer",
            facts={"address_state": "asked"},
        )

    def address_change__fraud_checks(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
            return _handoff_on_failure(s, "lookup_account_changes", checked, ExceptionKind.CORE_SYSTEM_ERROR)
        changes = checked["result"]["recent_changes"]
        note = f"Recent changes: {', '.join(changes)}." if changes else "No recent changes to contact details."
        return Turn(then="goto", goto="update", facts={"recent_changes": changes}, note=note)

    def address_change__update(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
        return _handoff_on_failure(s, "update_address", updated, ExceptionKind.CORE_SYSTEM_ERROR)

    def address_change__confirm(self, s: Snapshot, rng: random.Random, cfg: dict[str, Any]) -> Turn:
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
                    _say(
                        s,
                        f"Done: your address is now {s.facts['new_address']}. We've sent a confirmation letter "
                        "to your old address too.",
                        "Confirm the change to the customer.",
                    ),
                ]
            )
        for name, outcome in (("send_letter", letter), ("send_message", told)):
            if outcome is None or outcome["status"] != "executed":
                return _handoff_on_failure(s, name, outcome or {"status": "missing"}, ExceptionKind.MESSAGE_NOT_SENT)
        return Turn(then="complete", note="Address change confirmed by letter and message.")


def _say(s: Snapshot, text: str, why: str) -> Proposal:
    return Proposal("send_message", {"customer": s.customer, "text": text}, why)


def _handoff_on_failure(s: Snapshot, action: str, outcome: dict[str, Any], kind: ExceptionKind) -> Turn:
    detail = outcome.get("error") or outcome.get("reason") or outcome["status"]
    return Turn(
        then="handoff", reason=f"{action} did not go through ({outcome['status']}): {detail}", exception_kind=kind
    )
