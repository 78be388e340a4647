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
