"""What Handoff needs from a bank's core systems.

Every method that changes something takes ``idempotency_key``: calling it twice with the same
key must have one effect and return the first call's result. That is how Handoff makes effects
happen once although Celery delivers tasks at least once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import models


class ResourceKind(models.TextChoices):
    """The kinds of bank resource an action parameter can name. Every parameter of one of these
    kinds must belong to the journey's customer (``journeys.bounds``)."""

    CUSTOMER = "customer", "customer"
    ACCOUNT = "account", "account"
    CARD = "card", "card"
    TRANSACTION = "transaction", "transaction"
    CASE = "case", "case"


class CoreBankError(Exception):
    """A core-system call failed."""


class CoreBankUnavailable(CoreBankError):
    """Transient: the call may succeed if retried."""


class CoreBankRejected(CoreBankError):
    """Permanent: the core system refused the request; retrying will not help."""


class CoreBank(ABC):
    # --- ownership ---------------------------------------------------------------------------
    @abstractmethod
    def resource_owners(self, resources: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """Who owns each ``(kind, reference)`` (kind: a ``ResourceKind`` value): the owning
        customer's reference, or None for a resource the bank does not know. A customer owns
        itself. One call answers many resources (a proposal names several; a real bank batches
        the question). Raises ``CoreBankUnavailable`` when the bank cannot answer now."""

    def customer_owns(self, customer: str, kind: str, reference: str) -> bool:
        """Whether ``customer`` owns the resource ``reference`` of ``kind``."""
        return self.resource_owners([(kind, reference)]).get((kind, reference)) == customer

    def customer_resources(self, *, customer: str, days: int = 60) -> dict[str, list[tuple[str, str]]]:
        """The customer's own accounts, cards and recent card transactions, as (reference,
        label) pairs per ``ResourceKind``, for a person choosing among them. Labels never show a
        full card number. Built from the read calls below, so every bank answers it; a bank
        with a cheaper listing may override it."""
        account = self.lookup_account(customer=customer)
        accounts = [(account["account"], account["account"])] if account.get("account") else []
        cards, transactions = [], []
        for card in account.get("cards", []):
            cards.append((card["card"], f"card •••• {card['last4']} ({card['status']})"))
            for t in self.lookup_transactions(card=card["card"], days=days).get("transactions", []):
                label = f"{t['at'][:10]} · {t['description']} · {t['amount']} (card •••• {card['last4']})"
                transactions.append((str(t["id"]), label))
        return {
            ResourceKind.CUSTOMER: [(customer, f"{customer} (this journey's customer)")],
            ResourceKind.ACCOUNT: accounts,
            ResourceKind.CARD: cards,
            ResourceKind.TRANSACTION: transactions,
        }

    # --- what the console must mask -----------------------------------------------------------
    def sensitive_values(self, customers: list[str]) -> dict[str, dict[str, Any]]:
        """Per customer reference: ``{"cards": [{"token", "number"}], "address", "date_of_birth",
        "phone", "email"}`` — the values the console masks wherever they appear in text. A bank
        that cannot say returns nothing for a customer; card-shaped numbers are masked anyway."""
        return {}

    def card_last4(self, tokens: list[str]) -> dict[str, str]:
        """The last four digits of the real card behind each token (tokens it does not know
        are left out), so a card has one masked form: ``•••• 2256``."""
        return {}

    # --- reads -------------------------------------------------------------------------------
    @abstractmethod
    def lookup_account(self, *, customer: str) -> dict[str, Any]: ...

    @abstractmethod
    def lookup_transactions(self, *, card: str, days: int = 60, since: str | None = None) -> dict[str, Any]: ...

    @abstractmethod
    def lookup_fees(self, *, account: str, days: int = 90) -> dict[str, Any]: ...

    @abstractmethod
    def lookup_account_changes(self, *, customer: str, days: int = 30) -> dict[str, Any]: ...

    @abstractmethod
    def validate_address(self, *, address: str) -> dict[str, Any]: ...

    @abstractmethod
    def check_verification_code(self, *, customer: str, code: str) -> dict[str, Any]: ...

    # --- effects -----------------------------------------------------------------------------
    @abstractmethod
    def send_message(self, *, customer: str, text: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def send_verification_code(self, *, customer: str, channel: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def issue_refund(self, *, account: str, amount: Decimal, reason: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def block_card(self, *, card: str, reason: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def open_case(
        self, *, customer: str, kind: str, transaction: str | None, amount: Decimal | None, idempotency_key: str
    ) -> dict[str, Any]: ...

    @abstractmethod
    def order_card(self, *, account: str, address: str, expedited: bool, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def update_address(self, *, customer: str, address: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def send_letter(self, *, customer: str, address: str, text: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def escalate_risk(self, *, customer: str, reason: str, idempotency_key: str) -> dict[str, Any]: ...

    @abstractmethod
    def request_document(self, *, customer: str, document: str, idempotency_key: str) -> dict[str, Any]: ...
