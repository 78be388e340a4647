"""The demo bank's core systems, simulated in Handoff's own database.

``HANDOFF_CORE_FAILURE_RATE`` (0 by default) makes effect calls fail transiently now and then,
so the demo shows retries and fallbacks.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from journeys.corebank.base import CoreBank, CoreBankRejected, CoreBankUnavailable, ResourceKind
from journeys.db import insert_unless_taken, update_if

from .bank import STREETS
from .models import (
    CoreAccount,
    CoreCard,
    CoreCase,
    CoreCustomer,
    CoreEffect,
    CoreTransaction,
    CoreVerificationCode,
)

# The streets the address validator knows (the demo bank's streets); anything else "does not exist".
KNOWN_STREETS = STREETS


def _failure_rate() -> float:
    import os

    try:
        return float(os.environ.get("HANDOFF_CORE_FAILURE_RATE", "0"))
    except ValueError:
        return 0.0


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _row_id(reference: str) -> int | None:
    """A row id as text ("1234"); None for anything that is not one (no int overflow in SQL)."""
    return int(reference) if re.fullmatch(r"[0-9]{1,18}", reference) else None


def _case_id(reference: str) -> int | None:
    """A case as the bank names it ("CASE-000012", "RISK-000012") or its bare id."""
    match = re.fullmatch(r"(?:CASE-|RISK-)?([0-9]{1,18})", reference.strip())
    return int(match.group(1)) if match else None


class SimulatedCoreBank(CoreBank):
    def _customer(self, ref: str) -> CoreCustomer:
        try:
            return CoreCustomer.objects.get(ref=ref)
        except CoreCustomer.DoesNotExist:
            raise CoreBankRejected(f"No customer {ref!r} in the core bank.") from None

    def _account(self, number: str) -> CoreAccount:
        try:
            return CoreAccount.objects.select_related("customer").get(number=number)
        except CoreAccount.DoesNotExist:
            raise CoreBankRejected(f"No account {number!r} in the core bank.") from None

    def _card(self, token: str) -> CoreCard:
        try:
            return CoreCard.objects.select_related("account__customer").get(token=token)
        except CoreCard.DoesNotExist:
            raise CoreBankRejected(f"No card {token!r} in the core bank.") from None

    def _once(
        self, key: str, action: str, params: dict[str, Any], effect: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Run ``effect`` at most once per idempotency key; later calls return the first result.

        The key is claimed first: a row inserted unless one with that key exists (``ON CONFLICT
        DO NOTHING``), so a concurrent claim of the same key waits for the first to commit and
        then finds it done. The claim holds the effect's result once it has run. A claim whose
        effect did not run (a simulated outage, or any error that leaves the transaction usable)
        is taken back, so the next attempt runs it.
        """
        claim = CoreEffect(idempotency_key=key, action=action, params=params, result={})
        if not insert_unless_taken(claim, "idempotency_key"):
            return CoreEffect.objects.get(idempotency_key=key).result
        try:
            if random.random() < _failure_rate():
                raise CoreBankUnavailable(f"Core system timed out on {action}.")
            result = effect()
        except DatabaseError:
            raise  # the transaction rolls back, the claim with it
        except Exception:
            CoreEffect.objects.filter(pk=claim.pk).delete()
            raise
        update_if(CoreEffect, claim.pk, {"result": result}, field="idempotency_key", among=[key])
        return result

    # --- ownership ---------------------------------------------------------------------------
    def resource_owners(self, resources: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        wanted: dict[str, set[str]] = {}
        for kind, reference in resources:
            wanted.setdefault(kind, set()).add(str(reference))
        owners: dict[tuple[str, str], str | None] = {(kind, ref): None for kind, refs in wanted.items() for ref in refs}
        # One query per kind, whatever the number of resources.
        lookups: dict[str, tuple[Any, str, str, Callable[[str], Any]]] = {
            ResourceKind.CUSTOMER: (CoreCustomer.objects, "ref", "ref", str),
            ResourceKind.ACCOUNT: (CoreAccount.objects, "number", "customer__ref", str),
            ResourceKind.CARD: (CoreCard.objects, "token", "account__customer__ref", str),
            ResourceKind.TRANSACTION: (CoreTransaction.objects, "pk", "account__customer__ref", _row_id),
            ResourceKind.CASE: (CoreCase.objects, "pk", "customer__ref", _case_id),
        }
        for kind, refs in wanted.items():
            if kind not in lookups:
                continue  # a kind this bank does not hold: owned by no one
            manager, key, owner_path, parse = lookups[kind]
            parsed = {ref: parse(ref) for ref in refs}
            keys = {value for value in parsed.values() if value is not None}
            found = dict(manager.filter(**{f"{key}__in": keys}).values_list(key, owner_path)) if keys else {}
            for ref, value in parsed.items():
                owners[(kind, ref)] = found.get(value)
        return owners

    # --- what the console must mask -----------------------------------------------------------
    def sensitive_values(self, customers: list[str]) -> dict[str, dict[str, Any]]:
        # values(), not model instances: loading rows must not register more customers. One
        # query: a customer with several cards comes back once per card.
        found: dict[str, dict[str, Any]] = {}
        rows = CoreCustomer.objects.filter(ref__in=customers).values_list(
            "ref", "address", "date_of_birth", "phone", "email", "accounts__cards__token", "accounts__cards__number"
        )
        for ref, address, born, phone, email, token, number in rows:
            entry = found.setdefault(
                ref,
                {"cards": [], "address": address, "date_of_birth": born.isoformat(), "phone": phone, "email": email},
            )
            if token:
                entry["cards"].append({"token": token, "number": number})
        return found

    def card_last4(self, tokens: list[str]) -> dict[str, str]:
        return {
            token: number[-4:]
            for token, number in CoreCard.objects.filter(token__in=tokens).values_list("token", "number")
        }

    # --- reads -------------------------------------------------------------------------------
    def lookup_account(self, *, customer: str) -> dict[str, Any]:
        c = self._customer(customer)
        account = c.accounts.order_by("number").first()
        cards = list(CoreCard.objects.filter(account__customer=c).order_by("-issued_at"))
        return {
            "customer": c.ref,
            "name": c.name,
            "verified": True,
            "account": account.number if account else None,
            "balance": _money(account.balance) if account else None,
            "cards": [{"card": k.token, "last4": k.last4, "status": k.status} for k in cards],
            "premium": c.premium,
            "hardship": c.hardship,
            "address": c.address,
            "address_changed_recently": bool(
                c.address_changed_at and c.address_changed_at >= timezone.now() - timedelta(days=30)
            ),
            "customer_since": c.customer_since.isoformat(),
        }

    def lookup_transactions(self, *, card: str, days: int = 60, since: str | None = None) -> dict[str, Any]:
        k = self._card(card)
        start = timezone.now() - timedelta(days=days)
        if since:
            from django.utils.dateparse import parse_datetime

            parsed = parse_datetime(since)
            if parsed is None:
                raise CoreBankRejected(f"Cannot read the time {since!r}.")
            start = parsed
        rows = CoreTransaction.objects.filter(card=k, at__gte=start, kind=CoreTransaction.Kind.PURCHASE)
        return {
            "card": card,
            "transactions": [
                {"id": t.pk, "at": t.at.isoformat(), "description": t.description, "amount": _money(abs(t.amount))}
                for t in rows.order_by("-at")[:50]
            ],
        }

    def lookup_fees(self, *, account: str, days: int = 90) -> dict[str, Any]:
        a = self._account(account)
        since = timezone.now() - timedelta(days=days)
        fees = a.transactions.filter(kind=CoreTransaction.Kind.FEE, at__gte=since).order_by("-at")
        year_ago = timezone.now() - timedelta(days=365)
        refunds = a.transactions.filter(
            kind=CoreTransaction.Kind.REFUND, at__gte=year_ago, description__startswith="Fee reversal"
        )
        return {
            "account": account,
            "fees": [
                {
                    "id": f.pk,
                    "at": f.at.isoformat(),
                    "kind": f.fee_kind,
                    "description": f.description,
                    "amount": _money(-f.amount),
                }
                for f in fees
            ],
            "fee_refunds_last_year": refunds.count(),
            "fees_last_year": a.transactions.filter(kind=CoreTransaction.Kind.FEE, at__gte=year_ago).count(),
        }

    def lookup_account_changes(self, *, customer: str, days: int = 30) -> dict[str, Any]:
        c = self._customer(customer)
        since = timezone.now() - timedelta(days=days)
        changes = [
            name
            for name, when in (
                ("phone", c.phone_changed_at),
                ("email", c.email_changed_at),
                ("address", c.address_changed_at),
            )
            if when and when >= since
        ]
        recent_card = CoreCard.objects.filter(account__customer=c, issued_at__gte=since).exists()
        if recent_card:
            changes.append("card ordered")
        return {"customer": customer, "days": days, "recent_changes": changes}

    def validate_address(self, *, address: str) -> dict[str, Any]:
        # Normalised means spacing only: the address is kept as the customer typed it (a
        # postcode "SP2 2CD" must not become "Sp2 2Cd").
        normalised = " ".join(address.replace(",", " , ").split()).replace(" ,", ",")
        exists = any(street.lower() in address.lower() for street in KNOWN_STREETS)
        return {"address": normalised if exists else address, "exists": exists}

    def check_verification_code(self, *, customer: str, code: str) -> dict[str, Any]:
        c = self._customer(customer)
        latest = c.codes.first()
        return {"customer": customer, "valid": bool(latest and latest.code == code.strip())}

    # --- effects -----------------------------------------------------------------------------
    def send_message(self, *, customer: str, text: str, idempotency_key: str) -> dict[str, Any]:
        self._customer(customer)
        return self._once(idempotency_key, "send_message", {"customer": customer}, lambda: {"delivered": True})

    def send_verification_code(self, *, customer: str, channel: str, idempotency_key: str) -> dict[str, Any]:
        c = self._customer(customer)

        def effect() -> dict[str, Any]:
            code = f"{random.randint(0, 999999):06d}"
            CoreVerificationCode.objects.create(customer=c, code=code, channel=channel)
            return {"sent": True, "channel": channel, "to": f"•••{c.phone[-3:]}"}

        return self._once(idempotency_key, "send_verification_code", {"customer": customer}, effect)

    def issue_refund(self, *, account: str, amount: Decimal, reason: str, idempotency_key: str) -> dict[str, Any]:
        a = self._account(account)
        if amount <= 0:
            raise CoreBankRejected("A refund must be a positive amount.")

        def effect() -> dict[str, Any]:
            CoreAccount.objects.filter(pk=a.pk).update(balance=a.balance + amount)
            txn = CoreTransaction.objects.create(
                account=a,
                at=timezone.now(),
                kind=CoreTransaction.Kind.REFUND,
                description=reason.capitalize()[:120],
                amount=amount,
            )
            return {"refunded": _money(amount), "transaction": txn.pk}

        return self._once(idempotency_key, "issue_refund", {"account": account, "amount": _money(amount)}, effect)

    def block_card(self, *, card: str, reason: str, idempotency_key: str) -> dict[str, Any]:
        k = self._card(card)

        def effect() -> dict[str, Any]:
            CoreCard.objects.filter(pk=k.pk).update(status=CoreCard.Status.BLOCKED, blocked_reason=reason[:60])
            return {"blocked": True, "card": card, "at": timezone.now().isoformat()}

        return self._once(idempotency_key, "block_card", {"card": card}, effect)

    def open_case(
        self, *, customer: str, kind: str, transaction: str | None, amount: Decimal | None, idempotency_key: str
    ) -> dict[str, Any]:
        c = self._customer(customer)
        txn = (
            CoreTransaction.objects.filter(pk=transaction).first()
            if transaction and str(transaction).isdigit()
            else None
        )

        def effect() -> dict[str, Any]:
            case = CoreCase.objects.create(customer=c, kind=kind, transaction=txn, amount=amount)
            return {"case": f"CASE-{case.pk:06d}"}

        return self._once(idempotency_key, "open_case", {"customer": customer, "kind": kind}, effect)

    def order_card(self, *, account: str, address: str, expedited: bool, idempotency_key: str) -> dict[str, Any]:
        a = self._account(account)

        def effect() -> dict[str, Any]:
            # A random token: counting the cards to number it read the whole table on every order.
            card = CoreCard.objects.create(
                account=a,
                token=f"tok_{a.pk}_{secrets.token_hex(6)}",
                number=f"4000{random.randint(10**11, 10**12 - 1)}",
                status=CoreCard.Status.ORDERED,
            )
            eta = timezone.now().date() + timedelta(days=1 if expedited else 5)
            return {"card": card.token, "last4": card.last4, "delivery_date": eta.isoformat(), "expedited": expedited}

        return self._once(idempotency_key, "order_card", {"account": account, "expedited": expedited}, effect)

    def update_address(self, *, customer: str, address: str, idempotency_key: str) -> dict[str, Any]:
        c = self._customer(customer)

        def effect() -> dict[str, Any]:
            old = c.address
            CoreCustomer.objects.filter(pk=c.pk).update(address=address, address_changed_at=timezone.now())
            return {"updated": True, "old_address": old, "address": address}

        return self._once(idempotency_key, "update_address", {"customer": customer}, effect)

    def send_letter(self, *, customer: str, address: str, text: str, idempotency_key: str) -> dict[str, Any]:
        self._customer(customer)
        return self._once(idempotency_key, "send_letter", {"customer": customer}, lambda: {"posted": True})

    def escalate_risk(self, *, customer: str, reason: str, idempotency_key: str) -> dict[str, Any]:
        c = self._customer(customer)

        def effect() -> dict[str, Any]:
            case = CoreCase.objects.create(customer=c, kind="risk_review")
            return {"case": f"RISK-{case.pk:06d}"}

        return self._once(idempotency_key, "escalate_risk", {"customer": customer}, effect)

    def request_document(self, *, customer: str, document: str, idempotency_key: str) -> dict[str, Any]:
        self._customer(customer)
        return self._once(
            idempotency_key,
            "request_document",
            {"customer": customer, "document": document},
            lambda: {"requested": document},
        )
