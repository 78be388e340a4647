"""The scripted agent: deterministic, the embedded default and the test agent.

Each step is a small function of the snapshot, kept in its journey's module (``demo.journeys``).
It proposes the step's action, reads the result on its next turn, and moves on. ``Agent.config``
makes it imperfect on purpose, so the demo has exceptions to look at; its choices are seeded by
journey and turn, so a run repeats:

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

        from .journeys import JOURNEYS  # each journey's module names its steps' behaviour

        journey = JOURNEYS.get(s.definition)
        handler = journey.STEPS.get(s.step) if journey is not None else None
        if handler is None:
            raise AgentError(f"The scripted agent has no behaviour for {s.definition}/{s.step}.")
        return handler(s, rng, cfg)

    # --- lost or stolen card ---------------------------------------------------------------


# --- what every journey's steps share ---------------------------------------------------
def check_identity(s: Snapshot, next_step: str) -> Turn:
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
        return handoff_on_failure(s, "lookup_account", looked_up, ExceptionKind.IDENTITY_NOT_VERIFIED)
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
            say(
                s,
                "I couldn't match those details. Please confirm your date of birth and the "
                "last four digits of your card.",
                "The details did not match the core bank; ask once more.",
            )
        ],
        then="wait_customer",
        facts={"identity_attempts": attempts},
    )


def tell(s: Snapshot, text: str, why: str) -> Turn:
    told = s.result("send_message")
    if told is None:
        return Turn([say(s, text, why)])
    if told["status"] != "executed":
        return handoff_on_failure(s, "send_message", told, ExceptionKind.MESSAGE_NOT_SENT)
    return Turn(then="complete", note="The customer has been told the outcome.")


def say(s: Snapshot, text: str, why: str) -> Proposal:
    return Proposal("send_message", {"customer": s.customer, "text": text}, why)


def handoff_on_failure(s: Snapshot, action: str, outcome: dict[str, Any], kind: ExceptionKind) -> Turn:
    detail = outcome.get("error") or outcome.get("reason") or outcome["status"]
    return Turn(
        then="handoff", reason=f"{action} did not go through ({outcome['status']}): {detail}", exception_kind=kind
    )
