"""An external agent playing a fee-refund journey through Handoff's API (httpx only).

    HANDOFF_URL=http://127.0.0.1:8000 HANDOFF_TOKEN=hnd_… python examples/external_agent.py

It starts a journey, looks the customer up, proposes a refund that needs a person's approval,
waits for the supervisor's decision (approve or reject it at /review/), and carries on: it tells
the customer the outcome. Every call carries an Idempotency-Key, so a retried call after a
network error never does anything twice. The token must belong to an agent of kind "external"
whose grants include viewing fee-refund journeys.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import httpx

TERMINAL = {"executed", "failed", "rejected", "expired", "withdrawn", "denied"}


def call(client: httpx.Client, method: str, path: str, body: dict | None = None) -> dict:
    headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
    tries = 5
    for _ in range(tries):
        response = client.request(method, path, json=body, headers=headers)
        if response.status_code == 429:  # rate limited: wait as told, then repeat the same call
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code >= 400:
            error = response.json()
            sys.exit(f"{method} {path} → {response.status_code} {error['error']}: {error['message']}")
        return response.json()
    sys.exit(f"{method} {path}: still rate limited after {tries} tries")


def propose(client: httpx.Client, journey: int, action: str, params: dict, why: str) -> dict:
    proposal = call(
        client,
        "POST",
        f"/api/v1/journeys/{journey}/proposals",
        {"action": action, "params": params, "explanation": why, "confidence": 0.9, "agent_version": "example-1"},
    )
    print(f"  {action}: {proposal['status']} — {proposal['decision']['rule']}")
    return proposal


def wait_for_decision(client: httpx.Client, proposal: dict, timeout: float) -> dict:
    print(f"  waiting for a person to decide proposal {proposal['id']} (expires {proposal['expires_at']})…")
    deadline = time.monotonic() + timeout
    while proposal["status"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1)
        proposal = call(client, "GET", proposal["url"])
    print(f"  decided: {proposal['status']} by {proposal['decided_by'] or 'the rules'} {proposal['decision_reason']}")
    return proposal


def main() -> None:
    base = os.environ.get("HANDOFF_URL", "http://127.0.0.1:8000")
    token = os.environ["HANDOFF_TOKEN"]
    customer = os.environ.get("HANDOFF_CUSTOMER", "CUST-00001")
    amount = os.environ.get("REFUND_AMOUNT", "120.00")
    timeout = float(os.environ.get("DECISION_TIMEOUT", "600"))
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        journey = call(
            client,
            "POST",
            "/api/v1/journeys",
            {
                "definition": "fee_refund",
                "customer_ref": customer,
                "channel": "app",
                "message": "Why was I charged an overdraft fee?",
                "context": {"fee": "overdraft"},
            },
        )
        jid = journey["id"]
        print(f"Started J-{jid} ({journey['status']}); the console shows it at {base}{journey['console_url']}")
        account = propose(client, jid, "lookup_account", {"customer": customer}, "Verify who we are talking to.")
        number = (account.get("result") or {}).get("account")
        refund = propose(
            client,
            jid,
            "issue_refund",
            {"account": number, "amount": amount, "reason": "fee reversal", "customer": customer},
            "The overdraft fee was charged while a salary payment was pending.",
        )
        if refund["status"] == "pending":
            refund = wait_for_decision(client, refund, timeout)
        outcome = "refunded" if refund["status"] in ("executed", "approved", "auto_approved") else "not refunded"
        propose(
            client,
            jid,
            "send_message",
            {"customer": customer, "text": f"Your overdraft fee was {outcome}."},
            "Tell the customer the outcome.",
        )
        events = call(client, "GET", f"/api/v1/journeys/{jid}/events")
        print(f"J-{jid}: {len(events['events'])} events; last: {events['events'][-1]['summary']}")
        print(f"RESULT {refund['status']}")


if __name__ == "__main__":
    main()
