"""The scripted agent's choices that the demo's steady state depends on."""

from __future__ import annotations

from demo.agent import ScriptedAgent
from demo.corebank import SimulatedCoreBank
from demo.models import CoreCard, CoreCustomer
from journeys.agents.base import Snapshot


def _verified_card(customer: str) -> str:
    looked_up = SimulatedCoreBank().lookup_account(customer=customer)
    snapshot = Snapshot(
        journey_id=1,
        definition="card_dispute",
        step="verify_identity",
        customer=customer,
        channel="chat",
        turn=1,
        context={"request": {}, "results": {"lookup_account": {"status": "executed", "result": looked_up}}},
        agent_config={},
    )
    turn = ScriptedAgent().next_turn(snapshot)
    return turn.facts["card"]


def test_after_a_lost_card_a_dispute_searches_the_blocked_card_not_the_replacement(demo):
    customer = CoreCustomer.objects.order_by("pk").first()
    old = CoreCard.objects.filter(account__customer=customer).first()
    assert old.transactions.exists()
    CoreCard.objects.filter(pk=old.pk).update(status=CoreCard.Status.BLOCKED)
    CoreCard.objects.create(account=old.account, token="tok_new_1", number="4000000000000001", status="ordered")
    card = _verified_card(customer.ref)
    assert card == old.token
    found = SimulatedCoreBank().lookup_transactions(card=card, days=60)["transactions"]
    assert found, "the charges the customer disputes are on the blocked card"


def test_the_simulated_customer_names_the_charge_of_the_amount_they_disputed(demo):
    from demo.models import CoreTransaction
    from demo.simulator import Simulator
    from journeys.models import Journey
    from journeys.services import journey_start

    purchases = list(CoreTransaction.objects.filter(kind=CoreTransaction.Kind.PURCHASE).order_by("pk")[:3])
    meant = purchases[2]
    journey = journey_start(
        definition="card_dispute", customer_ref="CUST-00001", request={"amount": f"{abs(meant.amount):.2f}"}
    )
    journey.context["facts"] = {"candidates": [p.pk for p in purchases]}
    Journey.objects.filter(pk=journey.pk).update(context=journey.context, current_step="find_transaction")
    journey.refresh_from_db()
    _, data, _ = Simulator(seed=1).answer(journey, "cooperative")
    assert data == {"choice": meant.pk}


def _find_transaction(facts: dict, reply: dict | None, transactions: list[dict]) -> object:
    context = {
        "request": {"merchant": "StreamFlix"},
        "facts": facts,
        "results": {
            "lookup_transactions": {"status": "executed", "result": {"transactions": transactions}},
            "send_message": {"status": "executed", "result": {}},
        },
    }
    if reply is not None:
        context["reply"] = reply
    snapshot = Snapshot(
        journey_id=1,
        definition="card_dispute",
        step="find_transaction",
        customer="CUST-00001",
        channel="chat",
        turn=3,
        context=context,
        agent_config={},
    )
    return ScriptedAgent().next_turn(snapshot)


def test_a_dispute_waits_for_the_customers_choice_when_it_comes_back_before_the_reply(demo):
    charges = [
        {"id": 1, "description": "StreamFlix", "amount": "11.99", "at": "2026-11-01T10:00:00"},
        {"id": 2, "description": "StreamFlix", "amount": "15.99", "at": "2026-10-01T10:00:00"},
    ]
    asked = {"asked_choice": True, "candidates": [1, 2]}
    # The agent's question went out after a retry and the agent came back: no answer yet, so wait.
    assert _find_transaction(asked, None, charges).then == "wait_customer"
    # The customer named one: it goes on with that charge.
    chosen = _find_transaction(asked, {"text": "the second", "data": {"choice": 2}}, charges)
    assert chosen.then == "goto" and chosen.facts["transaction"]["id"] == 2
    # The customer answered without naming one: a person has to find it.
    vague = _find_transaction(asked, {"text": "OK, thanks.", "data": {}}, charges)
    assert vague.then == "handoff"


def test_the_simulator_opens_an_address_change_mostly_for_a_customer_with_no_recent_changes(demo):
    from datetime import timedelta

    from django.utils import timezone

    from demo.journeys import address_change
    from demo.simulator import Simulator

    recent = timezone.now() - timedelta(days=3)
    changed = list(CoreCustomer.objects.order_by("pk").values_list("pk", flat=True)[:6])
    CoreCustomer.objects.filter(pk__in=changed).update(phone_changed_at=recent)
    sim = Simulator(seed=2)
    picked = [sim._customer_for(address_change).pk for _ in range(200)]
    unusual = sum(pk in changed for pk in picked) / len(picked)
    assert unusual < 0.2, unusual  # the customers with a recent change are half of 12, picked rarely
    assert address_change.ordinary_customers(CoreCustomer.objects.filter(pk__in=changed)).count() == 0


def test_the_simulator_opens_disputes_mostly_about_small_charges(demo):
    from decimal import Decimal

    from demo.journeys import card_dispute
    from demo.simulator import Simulator

    sim = Simulator(seed=4)
    amounts = [Decimal(sim.open_journey("card_dispute").context["request"]["amount"]) for _ in range(40)]
    small = sum(amount <= card_dispute.SMALL_CHARGE for amount in amounts) / len(amounts)
    assert small >= 0.6, small
