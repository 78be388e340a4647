"""The demo bank's four journeys, one module each.

Each module holds the journey's ``DEFINITION``, the scripted agent's behaviour per step
(``STEPS``), the simulated customer (``customer_request``, ``customer_reply``) and the demo's
default ``GRANTS``.
"""

from __future__ import annotations

from types import ModuleType

from . import address_change, card_dispute, fee_refund, lost_card

JOURNEYS: dict[str, ModuleType] = {m.KEY: m for m in (card_dispute, lost_card, fee_refund, address_change)}

__all__ = ["JOURNEYS"]
