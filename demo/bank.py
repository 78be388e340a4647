"""The demo bank's customers, accounts, cards and history, generated deterministically."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .models import CoreAccount, CoreCard, CoreCustomer, CoreTransaction

FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Farah",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kemi",
    "Luca",
    "Mira",
    "Noor",
    "Owen",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
    "Uma",
    "Vik",
    "Wren",
    "Yara",
]
LAST = [
    "Adeyemi",
    "Brennan",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
]
STREETS = [
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Road",
    "Park Avenue",
    "Victoria Road",
    "Queen Street",
    "King Street",
    "Green Lane",
    "Manor Road",
    "Orchard Way",
    "Harbour View",
]
MERCHANTS = [
    "Northwind Grocers",
    "Metro Rail",
    "StreamFlix",
    "Corner Café",
    "BookNook",
    "FuelPoint",
    "CityGym",
    "Skyline Air",
    "TechHub Online",
    "PetPals",
    "Urban Outfits",
    "QuickCab",
]
FEES = [
    ("overdraft", "Overdraft fee", "25.00"),
    ("late_payment", "Late payment fee", "12.00"),
    ("foreign_transaction", "Foreign transaction fee", "3.50"),
    ("maintenance", "Account maintenance fee", "8.00"),
    ("overdraft", "Unarranged overdraft fee", "45.00"),
]


def customer_ref(n: int) -> str:
    return f"CUST-{n:05d}"


@transaction.atomic
def seed_core_bank(count: int = 120, *, seed: int = 7) -> int:
    """Create ``count`` customers (idempotent: existing refs are left alone). Returns how many were new."""
    rng = random.Random(seed)
    now = timezone.now()
    existing = set(CoreCustomer.objects.values_list("ref", flat=True))
    created = 0
    for n in range(1, count + 1):
        # Draw every customer's numbers even when it exists, so the rest stay the same.
        first, last = rng.choice(FIRST), rng.choice(LAST)
        street = rng.choice(STREETS)
        flags = [rng.random() for _ in range(4)]
        history = rng.randint(12, 24)
        purchases = [
            (rng.randint(0, 59), rng.choice(MERCHANTS), Decimal(rng.randint(300, 48000)) / 100) for _ in range(history)
        ]
        fees = [(rng.randint(0, 89), rng.choice(FEES)) for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))]
        since_years = rng.randint(0, 15)
        ref = customer_ref(n)
        if ref in existing:
            continue
        customer = CoreCustomer.objects.create(
            ref=ref,
            name=f"{first} {last}",
            date_of_birth=date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
            phone=f"+44 7700 9{n:05d}",
            email=f"{first.lower()}.{last.lower()}{n}@example.com",
            address=f"{n % 90 + 1} {street}, Springfield SP{n % 9 + 1} {n % 7 + 1}AB",
            premium=flags[0] < 0.2,
            hardship=flags[1] < 0.06,
            customer_since=date(2026 - since_years, 1 + n % 12, 1),
            phone_changed_at=now - timedelta(days=rng.randint(1, 20)) if flags[2] < 0.1 else None,
            address_changed_at=now - timedelta(days=rng.randint(1, 25)) if flags[3] < 0.08 else None,
        )
        account = CoreAccount.objects.create(
            customer=customer, number=f"ACC-{n:06d}", balance=Decimal(rng.randint(10000, 900000)) / 100
        )
        card = CoreCard.objects.create(
            account=account,
            token=f"tok_card_{n:05d}",
            number=f"4000{n:04d}{rng.randint(10**7, 10**8 - 1)}",
            issued_at=now - timedelta(days=365),
        )
        CoreTransaction.objects.bulk_create(
            [
                CoreTransaction(
                    account=account,
                    card=card,
                    at=now - timedelta(days=d, hours=n % 24, minutes=i),
                    kind=CoreTransaction.Kind.PURCHASE,
                    description=merchant,
                    amount=-amount,
                )
                for i, (d, merchant, amount) in enumerate(purchases)
            ]
            + [
                CoreTransaction(
                    account=account,
                    at=now - timedelta(days=d, hours=3),
                    kind=CoreTransaction.Kind.FEE,
                    description=label,
                    amount=-Decimal(amount),
                    fee_kind=kind,
                )
                for d, (kind, label, amount) in fees
            ]
        )
        created += 1
    return created
