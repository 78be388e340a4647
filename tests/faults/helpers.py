"""What every fault test checks afterwards: each journey finished, each effect happened once."""

from __future__ import annotations

import json
from collections import Counter

from demo.models import CoreEffect
from journeys.models import Journey, ProposedAction

from .conftest import Processes

START_JOURNEYS = """
import json
from journeys.services import journey_start
ids = [
    journey_start(definition="lost_card", customer_ref=f"CUST-{n % 12 + 1:05d}", request={"reason": "lost"}).pk
    for n in range(COUNT)
]
print(json.dumps(ids))
"""


def start_journeys(processes: Processes, count: int) -> list[int]:
    """Open lost-card journeys from a separate process, so their first turns are published to
    the broker the test's workers use (not the suite's)."""
    out = processes.manage("shell", "-c", START_JOURNEYS.replace("COUNT", str(count)))
    return json.loads(out.strip().splitlines()[-1])


def live_count(ids: list[int]) -> int:
    return Journey.objects.filter(pk__in=ids, status__in=Journey.LIVE_STATUSES).count()


def describe(ids: list[int]) -> str:
    """Where the journeys stand, for a failure message."""
    rows = Journey.objects.filter(pk__in=ids).values_list(
        "status", "waiting_on", "current_step", "needs_person_reason", "turn_seq", "turn_starts"
    )
    return "\n".join(f"{n} x {row}" for row, n in Counter(rows).most_common())


def all_finished(ids: list[int]) -> bool:
    return live_count(ids) == 0


def assert_each_effect_once(ids: list[int]) -> None:
    """Every journey completed and its core-bank ledger shows each of its actions exactly once."""
    statuses = Counter(Journey.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {Journey.Status.COMPLETED: len(ids)}, f"not every journey completed: {dict(statuses)}"
    for journey_id in ids:
        effects = Counter(
            CoreEffect.objects.filter(idempotency_key__startswith=f"j{journey_id}-").values_list("action", flat=True)
        )
        assert effects["block_card"] == 1, f"J-{journey_id}: block_card {effects['block_card']} times"
        assert effects["order_card"] == 1, f"J-{journey_id}: order_card {effects['order_card']} times"
        assert all(n == 1 for n in effects.values()), f"J-{journey_id}: an effect repeated: {dict(effects)}"
        proposals = Counter(
            ProposedAction.objects.filter(journey_id=journey_id).values_list("action_type__key", flat=True)
        )
        assert proposals["block_card"] == 1 and proposals["order_card"] == 1, f"J-{journey_id}: {dict(proposals)}"
