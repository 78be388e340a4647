"""A bank's own core-bank adapter, as a production install without the demo would name in
``HANDOFF_CORE_BANK``: it knows customers ``C-1`` and ``C-2`` and sends messages; every other
effect is refused (this bank has not connected it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from journeys.corebank.base import CoreBank, CoreBankRejected, ResourceKind

CUSTOMERS = {"C-1", "C-2"}


def _not_connected(name: str):
    def method(self, **kwargs: Any) -> dict[str, Any]:
        raise CoreBankRejected(f"{name} is not connected in this bank.")

    method.__name__ = name
    return method


class OwnCoreBank(CoreBank):
    def resource_owners(self, resources: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        return {
            (kind, ref): ref if kind == ResourceKind.CUSTOMER and ref in CUSTOMERS else None for kind, ref in resources
        }

    def send_message(self, *, customer: str, text: str, idempotency_key: str) -> dict[str, Any]:
        return {"sent": True, "customer": customer}

    for _name in (
        "lookup_account",
        "lookup_transactions",
        "lookup_fees",
        "lookup_account_changes",
        "validate_address",
        "check_verification_code",
        "send_verification_code",
        "issue_refund",
        "block_card",
        "open_case",
        "order_card",
        "update_address",
        "send_letter",
        "escalate_risk",
        "request_document",
    ):
        locals()[_name] = _not_connected(_name)
    del _name
