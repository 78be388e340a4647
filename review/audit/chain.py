"""Appending to the audit trail and signing checkpoints of the chain heads.

Each journey has its own chain (``journey:<id>``); governance (scopes, grants, teams, pauses,
logins) has one ``governance`` chain. Appends to one chain are serialised with a PostgreSQL
transaction-scoped advisory lock on that chain, so concurrent journeys never wait for each other
and one chain stays linear. On SQLite (the embedded demo) the database's single writer does the
serialising. The lock is held until the caller's transaction ends: a record commits or rolls
back with the change it records.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from journeys.db import (
    OpeningRead,
    insert_rows,
    lock_then_read,
    register_opening_read,
    still_queued,
    transaction_marker,
)
from journeys.events import current_together
from review.models import AuditArchive, AuditCheckpoint, AuditRecord
from review.models.audit import GOVERNANCE_CHAIN, journey_chain

from .offline import (
    GENESIS,
    canonical_json,
    checkpoint_hash,
    checkpoint_signature,
    payload_digest,
    record_hash,
)

# Records written within this long before the previous checkpoint are looked at again, so a
# transaction that committed late (its row id is older than the checkpoint) is still covered.
CHECKPOINT_OVERLAP = timedelta(minutes=5)


class AuditWriteError(RuntimeError):
    """The audit record could not be written. It propagates, so the caller's transaction — the
    change the record was about — rolls back too: nothing happens unaudited."""


def audit_key() -> bytes:
    """The key that signs checkpoints: ``AUDIT_SIGNING_KEY``, else derived from SECRET_KEY."""
    configured = getattr(settings, "AUDIT_SIGNING_KEY", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(b"handoff-audit-checkpoints:" + settings.SECRET_KEY.encode()).digest()


def audit_key_id() -> str:
    """A short public fingerprint of the key, so a verifier knows which key signed what."""
    return hashlib.sha256(b"key-id:" + audit_key()).hexdigest()[:12]


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _lock_statement(name: str) -> tuple[str, list[int]]:
    """The statement that takes the transaction-scoped advisory lock named ``name``."""
    return "SELECT pg_advisory_xact_lock(%s)", [_lock_key(name)]


def _lock(name: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*_lock_statement(name))


@functools.cache
def _head_sql() -> tuple[str, tuple]:
    """The head read, ``AuditRecord.objects.filter(chain=…).order_by("-seq").values_list("seq",
    "hash")[:1]``, as plain SQL built once; the chain is its first parameter."""
    placeholder = "chain to read"
    sql, params = (
        AuditRecord.objects.filter(chain=placeholder)
        .order_by("-seq")
        .values_list("seq", "hash")[:1]
        .query.sql_with_params()
    )
    if not params or params[0] != placeholder:
        raise RuntimeError(f"The audit head read no longer takes the chain as its first parameter: {sql}")
    return sql, tuple(params[1:])


def header_fields(record: AuditRecord) -> dict[str, Any]:
    """The hashed fields of a stored record, as the export writes them."""
    return {
        "chain": record.chain,
        "seq": record.seq,
        "prev_hash": record.prev_hash,
        "at": timestamp(record.at),
        "kind": record.kind,
        "actor_kind": record.actor_kind,
        "actor_label": record.actor_label,
        "actor_user_id": record.actor_user_id,
        "actor_agent_id": record.actor_agent_id,
        "journey_id": record.journey_id,
        "definition_id": record.definition_id,
        "customer_ref": record.customer_ref,
        "action_type": record.action_type,
        "decision": record.decision,
        "proposal_id": record.proposal_id,
        "event_id": record.event_id,
        "summary": record.summary,
        "payload_sha256": record.payload_sha256,
    }


def _stable_number(text: str) -> float | int:
    """PostgreSQL's jsonb keeps numbers as exact decimals and prints ``1e+20`` back as
    ``100000000000000000000``; store such integral exponent forms as that integer up front so
    the payload reads back exactly as it was hashed."""
    if "e" in text.lower():
        exact = Decimal(text)
        if exact == exact.to_integral_value():
            return int(exact)
    return float(text)


def audit_append(**fields: Any) -> AuditRecord:
    """Append one record (the fields of ``audit_prepare``) to its chain. Joins the caller's
    transaction (the record commits or rolls back with the change it describes) and holds the
    chain's lock until that ends."""
    record = audit_prepare(**fields)
    audit_append_prepared([record])
    return record


def audit_prepare(
    *,
    chain: str,
    kind: str,
    summary: str,
    actor_kind: str = AuditRecord.Actor.SYSTEM,
    actor_label: str = "",
    actor_user_id: int | None = None,
    actor_agent_id: int | None = None,
    journey_id: int | None = None,
    definition_id: int | None = None,
    customer_ref: str = "",
    action_type: str = "",
    decision: str = "",
    proposal_id: int | None = None,
    event_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditRecord:
    """The record ``audit_append`` would write, not yet placed on its chain (no seq, link or
    hash) and not written: ``audit_append_prepared`` does both."""
    # Store exactly what is hashed: a JSON round trip turns Decimals, dates and tuples into the
    # plain values the database will give back to the verifier.
    clean_payload = json.loads(canonical_json(payload or {}), parse_float=_stable_number)
    # Salts the commitments to sensitive values, so a masked export can prove them without
    # revealing them (see offline.payload_digest).
    salt = secrets.token_hex(16)
    return AuditRecord(
        chain=chain,
        kind=kind[:40],
        actor_kind=actor_kind,
        actor_label=(actor_label or "")[:150],
        actor_user_id=actor_user_id,
        actor_agent_id=actor_agent_id,
        journey_id=journey_id,
        definition_id=definition_id,
        customer_ref=(customer_ref or "")[:40],
        action_type=(action_type or "")[:60],
        decision=(decision or "")[:40],
        proposal_id=proposal_id,
        event_id=event_id,
        summary=summary,
        payload=clean_payload,
        payload_salt=salt,
        payload_sha256=payload_digest(clean_payload, salt=salt),
    )


def audit_append_prepared(records: list[AuditRecord], *, stash: dict[str, Any] | None = None) -> None:
    """Place prepared records on their chains, in the order given, and write them in one INSERT.

    Per chain: one lock (held until the caller's transaction ends) and one read of its head,
    whatever the number of records, and none when the ``events.together`` block the records
    were prepared in keeps the head already (``stash``, by default the open block's: see
    ``_HEADS``). Joins the caller's transaction; no savepoint of its own, so a failure rolls
    back the change the records describe too (``AuditWriteError``).
    """
    if not records:
        return
    if stash is None:
        group = current_together()
        stash = group.stash if group is not None else None
    try:
        with transaction.atomic(savepoint=False):
            heads: dict[str, tuple[int, str] | None] = {}
            for record in records:
                if record.chain not in heads:
                    heads[record.chain] = _kept_head(stash, record.chain) or _locked_head(record.chain)
                last = heads[record.chain]
                record.at = timezone.now()  # appended now, under the chain's lock
                record.seq = (last[0] + 1) if last else 1
                record.prev_hash = last[1] if last else GENESIS
                record.hash = record_hash(header_fields(record))
                heads[record.chain] = (record.seq, record.hash)
            insert_rows(records)
            _keep_heads(stash, heads)
    except DatabaseError as exc:
        raise AuditWriteError(f"The audit trail could not be written ({exc}); the change was not made.") from exc


# The heads of the chains this phase of an agent's turn holds the lock of, kept in the stash of
# its ``events.together`` block under this name: chain -> (head, marker). The lock and the head
# of the journey's chain are read in the round trip that locks the journey
# (``journeys.db.OpeningRead``), and every append in the phase moves the head it keeps. A head
# is trusted only while its marker is queued (``journeys.db.queued_markers``): an append in a
# savepoint that rolled back loses its marker, and the head is read again under the lock.
_HEADS = "review.audit.heads"


def _kept_head(stash: dict[str, Any] | None, chain: str) -> tuple[int, str] | None:
    entry = stash.get(_HEADS, {}).get(chain) if stash is not None else None
    return entry[0] if entry is not None and still_queued(entry[1]) else None


def _keep_heads(stash: dict[str, Any] | None, heads: dict[str, tuple[int, str] | None]) -> None:
    if stash is None or not connection.in_atomic_block:
        return
    marker = transaction_marker()
    kept = stash.setdefault(_HEADS, {})
    for chain, head in heads.items():
        if head is not None:
            kept[chain] = (head, marker)


def _turn_head_statements(journey_id: int, turn: Any) -> list[tuple[str, list]]:
    chain = journey_chain(journey_id)
    head_sql, head_params = _head_sql()
    return [_lock_statement(f"audit:{chain}"), (head_sql, [chain, *head_params])]


def _keep_turn_head(journey_id: int, rows: list[tuple], stash: dict[str, Any]) -> None:
    # No row: the chain is new or archived whole; its first append finds out which.
    if rows:
        seq, digest = rows[0]
        _keep_heads(stash, {journey_chain(journey_id): (seq, digest)})


register_opening_read(OpeningRead(_turn_head_statements, _keep_turn_head))


def _locked_head(chain: str) -> tuple[int, str] | None:
    """Lock ``chain`` until the transaction ends and read its head (seq, hash), or None. On
    PostgreSQL the lock and the read are two statements sent in one round trip: the read, a
    statement of its own, sees the head a writer we waited for committed."""
    head_sql, head_params = _head_sql()
    rows = lock_then_read(*_lock_statement(f"audit:{chain}"), head_sql, [chain, *head_params])
    last = rows[0] if rows else None
    if last is None:
        # A chain whose records were all archived goes on from the signed archived head.
        archived = AuditArchive.objects.filter(heads__has_key=chain).order_by("-seq").values_list("heads", flat=True)
        last = next(iter(archived), {}).get(chain)
    return tuple(last) if last else None


def person(user: Any) -> dict[str, Any]:
    """Actor fields for a person (or a service user) in ``audit_append``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {"actor_kind": AuditRecord.Actor.SYSTEM, "actor_label": ""}
    return {
        "actor_kind": AuditRecord.Actor.PERSON,
        "actor_label": user.get_username(),
        "actor_user_id": user.pk,
    }


def governance_append(
    *,
    kind: str,
    summary: str,
    actor: Any = None,
    definition_id: int | None = None,
    payload: dict[str, Any] | None = None,
    actor_fields: dict[str, Any] | None = None,
) -> AuditRecord:
    return audit_append(
        chain=GOVERNANCE_CHAIN,
        kind=kind,
        summary=summary,
        definition_id=definition_id,
        payload=payload,
        **(actor_fields or person(actor)),
    )


def checkpoint_payload(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "seq": checkpoint.seq,
        "at": timestamp(checkpoint.at),
        "upto_record_id": checkpoint.upto_record_id,
        "heads": checkpoint.heads,
        "prev_hash": checkpoint.prev_hash,
        "hash": checkpoint.hash,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
    }


@transaction.atomic
def checkpoint_create() -> AuditCheckpoint | None:
    """Sign the heads of every chain that grew since the previous checkpoint. None when nothing
    grew. Safe to run concurrently (serialised by a lock) and repeatedly (beat runs it)."""
    _lock("audit:checkpoint")
    previous = AuditCheckpoint.objects.order_by("-seq").first()
    upto = AuditRecord.objects.aggregate(m=Max("id"))["m"] or 0
    recent = AuditRecord.objects.filter(id__lte=upto)
    if previous is not None:
        recent = recent.filter(Q(id__gt=previous.upto_record_id) | Q(at__gte=previous.at - CHECKPOINT_OVERLAP))
    tops = dict(
        AuditRecord.objects.filter(chain__in=recent.values("chain"), id__lte=upto)
        .values_list("chain")
        .annotate(top=Max("seq"))
        .values_list("chain", "top")
    )
    heads: dict[str, list[Any]] = {}
    names = list(tops)
    for start in range(0, len(names), 500):
        batch = Q()
        for name in names[start : start + 500]:
            batch |= Q(chain=name, seq=tops[name])
        for chain, seq, digest in AuditRecord.objects.filter(batch).values_list("chain", "seq", "hash"):
            heads[chain] = [seq, digest]
    if previous is not None:
        heads = {chain: head for chain, head in heads.items() if previous.heads.get(chain) != head}
    if not heads:
        return None
    checkpoint = AuditCheckpoint(
        seq=(previous.seq + 1) if previous else 1,
        at=timezone.now(),
        upto_record_id=upto,
        heads=heads,
        prev_hash=previous.hash if previous else GENESIS,
        key_id=audit_key_id(),
    )
    checkpoint.hash = checkpoint_hash(checkpoint_payload(checkpoint))
    checkpoint.signature = checkpoint_signature(audit_key(), checkpoint.hash)
    checkpoint.save(force_insert=True)
    return checkpoint


_explicit: ContextVar[bool] = ContextVar("audit_explicit", default=False)


@contextmanager
def explicitly_audited() -> Iterator[None]:
    """Inside this block the caller writes its own, richer audit record (e.g. the teams page's
    before/after per definition), so the row-level grant receivers stay quiet."""
    token = _explicit.set(True)
    try:
        yield
    finally:
        _explicit.reset(token)


def is_explicitly_audited() -> bool:
    return _explicit.get()
