"""The demo bank's simulated core systems.

A real bank implements ``journeys.corebank.base.CoreBank`` against its own systems; these
tables only back the demo's ``SimulatedCoreBank`` and exist only where the demo app is installed.
They keep the table names they had when they lived in the journeys app, so a database from
before the move keeps its rows (``demo/migrations/0001_initial.py`` adopts them).
``CoreEffect`` stands in for the idempotency a real core system offers: one row per idempotency
key, so an effect happens once.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CoreCustomer(models.Model):
    ref = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    date_of_birth = models.DateField()
    phone = models.CharField(max_length=30)
    email = models.EmailField()
    address = models.CharField(max_length=200)
    premium = models.BooleanField(default=False)
    hardship = models.BooleanField(default=False)
    customer_since = models.DateField()
    phone_changed_at = models.DateTimeField(null=True, blank=True)
    email_changed_at = models.DateTimeField(null=True, blank=True)
    address_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "journeys_corecustomer"
        ordering = ["ref"]

    def __str__(self) -> str:
        return f"{self.ref} {self.name}"


class CoreAccount(models.Model):
    customer = models.ForeignKey(CoreCustomer, on_delete=models.CASCADE, related_name="accounts")
    number = models.CharField(max_length=20, unique=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        db_table = "journeys_coreaccount"
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class CoreCard(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BLOCKED = "blocked", "Blocked"
        ORDERED = "ordered", "Ordered"

    account = models.ForeignKey(CoreAccount, on_delete=models.CASCADE, related_name="cards")
    # The token is what travels in action parameters; the number stays in the core system.
    token = models.CharField(max_length=30, unique=True)
    number = models.CharField(max_length=19, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    blocked_reason = models.CharField(max_length=60, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "journeys_corecard"
        ordering = ["number"]

    def __str__(self) -> str:
        return f"•••• {self.number[-4:]}"

    @property
    def last4(self) -> str:
        return self.number[-4:]


class CoreTransaction(models.Model):
    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Card purchase"
        FEE = "fee", "Fee"
        REFUND = "refund", "Refund"

    account = models.ForeignKey(CoreAccount, on_delete=models.CASCADE, related_name="transactions")
    card = models.ForeignKey(CoreCard, null=True, blank=True, on_delete=models.CASCADE, related_name="transactions")
    at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    description = models.CharField(max_length=120)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    fee_kind = models.CharField(max_length=30, blank=True)

    class Meta:
        db_table = "journeys_coretransaction"
        ordering = ["-at"]
        indexes = [models.Index(fields=["account", "kind", "at"], name="core_txn_account_kind")]

    def __str__(self) -> str:
        return f"{self.description} {self.amount}"


class CoreCase(models.Model):
    customer = models.ForeignKey(CoreCustomer, on_delete=models.CASCADE, related_name="cases")
    kind = models.CharField(max_length=30)
    transaction = models.ForeignKey(CoreTransaction, null=True, blank=True, on_delete=models.SET_NULL)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=20, default="open")
    opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "journeys_corecase"

    def __str__(self) -> str:
        return f"case {self.pk} {self.kind}"


class CoreVerificationCode(models.Model):
    customer = models.ForeignKey(CoreCustomer, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=8)
    channel = models.CharField(max_length=10)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "journeys_coreverificationcode"
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"code for {self.customer_id} by {self.channel}"


class CoreEffect(models.Model):
    """One row per effect the core bank carried out, unique by the caller's idempotency key."""

    idempotency_key = models.CharField(max_length=80, unique=True)
    action = models.CharField(max_length=60)
    params = models.JSONField(default=dict)
    result = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "journeys_coreeffect"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} [{self.idempotency_key}]"
