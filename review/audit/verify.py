"""Verifying the audit trail: every chain link by link, and every signed checkpoint.

A break is any of: a record whose content no longer matches its hash, a payload that no longer
matches its digest, a link that does not point at the record before it, a missing or inserted
sequence number, a checkpoint whose hash, link or signature is wrong, or a checkpointed chain
head that is no longer in the trail (a deleted tail or a re-hashed chain). With a copy of the
checkpoints kept outside the database, a checkpoint rewritten in the database is caught too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection

from review.models import AuditArchive, AuditCheckpoint, AuditRecord

from .chain import audit_key, audit_key_id, checkpoint_payload, timestamp
from .offline import (
    GENESIS,
    SORTED_HASHED_FIELDS,
    checkpoint_hash,
    checkpoint_signature,
    payload_digest,
    record_hash_sorted,
)

Progress = Callable[[int, int], None]


@dataclass
class Break:
    record_id: int | None
    chain: str
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"record {self.record_id} ({self.chain} #{self.seq})" if self.record_id else self.chain
        return f"{where}: {self.reason}"


@dataclass
class VerifyResult:
    records: int = 0
    chains: int = 0
    checkpoints: int = 0
    breaks: list[Break] = field(default_factory=list)
    sink_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        """The earliest broken record (lowest id); chain-level breaks come after record ones."""
        with_ids = [b for b in self.breaks if b.record_id is not None]
        if with_ids:
            return min(with_ids, key=lambda b: b.record_id)
        return self.breaks[0] if self.breaks else None

    def summary(self) -> str:
        if self.ok:
            return (
                f"Audit trail intact: {self.records} records in {self.chains} chains, "
                f"{self.checkpoints} signed checkpoints verified."
            )
        return (
            f"Audit trail BROKEN: {len(self.breaks)} break(s); first broken {self.first_break}. "
            f"Checked {self.records} records in {self.chains} chains "
            f"and {self.checkpoints} checkpoints."
        )


def _check_checkpoints(result: VerifyResult, external: list[dict[str, Any]] | None) -> dict[tuple[str, int], str]:
    """Check the checkpoint chain and signatures; return the heads the records must still match."""
    key, key_id = audit_key(), audit_key_id()
    expected: dict[tuple[str, int], str] = {}
    previous_hash = GENESIS
    stored: dict[int, dict[str, Any]] = {}
    for checkpoint in AuditCheckpoint.objects.order_by("seq").iterator(chunk_size=200):
        result.checkpoints += 1
        data = checkpoint_payload(checkpoint)
        stored[checkpoint.seq] = data
        label = f"checkpoint {checkpoint.seq}"
        if checkpoint.prev_hash != previous_hash:
            result.breaks.append(Break(None, label, None, "does not link to the checkpoint before it"))
        if checkpoint_hash(data) != checkpoint.hash:
            result.breaks.append(Break(None, label, None, "content does not match its hash"))
        if checkpoint.key_id == key_id and checkpoint_signature(key, checkpoint.hash) != checkpoint.signature:
            result.breaks.append(Break(None, label, None, "signature is not the server's"))
        elif checkpoint.key_id != key_id:
            result.breaks.append(Break(None, label, None, f"signed with key {checkpoint.key_id}, not the current key"))
        previous_hash = checkpoint.hash
        for chain, (seq, digest) in checkpoint.heads.items():
            expected[(chain, seq)] = digest
    for outside in external or []:
        label = f"checkpoint {outside.get('seq')}"
        mine = stored.get(outside.get("seq"))
        # The outside copy's heads must be in the trail whatever happened to the database's copy.
        for chain, (seq, digest) in (outside.get("heads") or {}).items():
            expected[(chain, seq)] = digest
        if mine is None:
            result.breaks.append(Break(None, label, None, "in the outside copy but missing from the database"))
            continue
        for name in ("hash", "heads", "prev_hash", "signature"):
            if mine[name] != outside.get(name):
                result.breaks.append(Break(None, label, None, f"{name} differs from the outside copy"))
                break
        if outside.get("key_id") == key_id and checkpoint_signature(key, outside.get("hash", "")) != outside.get(
            "signature"
        ):
            result.breaks.append(Break(None, label, None, "the outside copy's signature is not the server's"))
    return expected


def _check_sink_is_current(result: VerifyResult, outside: list[dict[str, Any]]) -> None:
    """A checkpoint that should long have reached the outside sink but has not: the sink is
    failing (or was cut), and the window an attacker could use is open."""
    from django.conf import settings
    from django.utils import timezone

    newest_outside = max((c.get("seq") or 0 for c in outside), default=0)
    grace = timedelta(seconds=max(5 * settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["schedule"], 300))
    stale = AuditCheckpoint.objects.filter(seq__gt=newest_outside, at__lt=timezone.now() - grace).order_by("seq")
    first = stale.first()
    if first is not None:
        result.breaks.append(
            Break(None, f"checkpoint {first.seq}", None, "never reached the outside sink (is the sink writable?)")
        )


def _check_archives(result: VerifyResult) -> dict[str, list[Any]]:
    """Check the signed "archived up to" rows; return each chain's last archived [seq, hash]."""
    from .archive import archive_payload, archived_heads

    key, key_id = audit_key(), audit_key_id()
    previous_hash = GENESIS
    for archive in AuditArchive.objects.order_by("seq").iterator():
        label = f"archive {archive.seq}"
        if archive.prev_hash != previous_hash:
            result.breaks.append(Break(None, label, None, "does not link to the archive before it"))
        if checkpoint_hash(archive_payload(archive)) != archive.hash:
            result.breaks.append(Break(None, label, None, "content does not match its hash"))
        if archive.key_id != key_id or checkpoint_signature(key, archive.hash) != archive.signature:
            result.breaks.append(Break(None, label, None, "signature is not the server's"))
        previous_hash = archive.hash
    return archived_heads()


# Records are read as tuples in pages along the (chain, seq) index: no model instances, no
# long-running transaction or server-side cursor materialised up front, and progress stays visible.
PAGE = 20_000
# id, hash, payload (JSON text), salt, then the hashed fields in canonical (sorted) order with
# ``at`` as the export writes it, so the tail of a row is exactly what the record hash covers.
_HEAD = ["id", "hash", "payload", "payload_salt"]
_FIELDS = [*_HEAD, *SORTED_HASHED_FIELDS]
CHAIN, SEQ, PREV_HASH, PAYLOAD_SHA256 = (_FIELDS.index(n) for n in ("chain", "seq", "prev_hash", "payload_sha256"))
HASHED_FROM = len(_HEAD)
_PG_AT = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _pages_postgresql() -> Iterator[list[tuple[Any, ...]]]:
    """Pages of raw rows; PostgreSQL formats the timestamp (in its own process) and hands the
    payload over as JSON text (Django's jsonb loader), parsed by ``json.loads`` when needed."""
    columns = ", ".join(_PG_AT if name == "at" else name for name in _FIELDS)
    table = AuditRecord._meta.db_table
    first = f"SELECT {columns} FROM {table} ORDER BY chain, seq LIMIT %s"
    after = f"SELECT {columns} FROM {table} WHERE (chain, seq) > (%s, %s) ORDER BY chain, seq LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(first, [PAGE])
        while True:
            rows = cursor.fetchall()
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            last = rows[-1]
            cursor.execute(after, [last[CHAIN], last[SEQ], PAGE])


def _pages_orm() -> Iterator[list[tuple[Any, ...]]]:
    """The same rows through the ORM, for the embedded SQLite demo."""
    at = _FIELDS.index("at")
    page: list[tuple[Any, ...]] = []
    for row in AuditRecord.objects.order_by("chain", "seq").values_list(*_FIELDS).iterator(chunk_size=2000):
        page.append((row[0], row[1], json.dumps(row[2]), *row[3:at], timestamp(row[at]), *row[at + 1 :]))
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def audit_verify(
    *,
    progress: Progress | None = None,
    external_checkpoints: list[dict[str, Any]] | None = None,
    use_sink: bool = True,
    every: int = 5000,
) -> VerifyResult:
    """Verify everything; one pass over the records in (chain, seq) order. Unless given another
    copy, the checkpoints are compared with the outside sink's (``review.audit.sink``)."""
    result = VerifyResult()
    if external_checkpoints is None and use_sink:
        from .sink import sink_read

        external_checkpoints = sink_read()
        result.sink_checked = external_checkpoints is not None
        _check_sink_is_current(result, external_checkpoints or [])
    expected_heads = _check_checkpoints(result, external_checkpoints)
    archived = _check_archives(result)
    total = AuditRecord.objects.count()
    if progress:
        progress(0, total)
    pages = _pages_postgresql() if connection.vendor == "postgresql" else _pages_orm()
    breaks = result.breaks
    # Per chain: the (seq, hash) the next record must follow, and whether a break was reported.
    chain: str | None = None
    prev_seq, prev_hash, chain_broken = 0, GENESIS, False
    seen_heads: set[tuple[str, int]] = set()
    records = chains = 0
    next_progress = every
    loads = json.loads
    for page in pages:
        for row in page:
            record_chain, seq, digest = row[CHAIN], row[SEQ], row[1]
            if record_chain != chain:
                chain, chain_broken = record_chain, False
                chains += 1
                # After archiving, the online chain starts where the signed archive row stops.
                prev_seq, prev_hash = archived.get(chain) or (0, GENESIS)
            reason = ""
            if seq != prev_seq + 1:
                reason = f"sequence jumps from #{prev_seq} to #{seq} (a record was removed)"
            elif row[PREV_HASH] != prev_hash:
                reason = "does not link to the record before it"
            elif payload_digest(loads(row[2]), salt=row[3]) != row[PAYLOAD_SHA256]:
                reason = "payload does not match its digest (edited)"
            elif record_hash_sorted(row[HASHED_FROM:]) != digest:
                reason = "content does not match its hash (edited)"
            head = expected_heads.get((chain, seq)) if expected_heads else None
            if head is not None:
                seen_heads.add((chain, seq))
                if head != digest and not reason:
                    reason = "differs from the signed checkpoint (chain re-hashed)"
            if reason and not chain_broken:
                # Only the first break of a chain is reported: everything after it is suspect anyway.
                breaks.append(Break(row[0], chain, seq, reason))
                chain_broken = True
            prev_seq, prev_hash = seq, digest
        records += len(page)
        if progress and records >= next_progress:
            progress(records, total)
            next_progress = (records // every + 1) * every
    result.records, result.chains = records, chains
    for head_chain, seq in sorted(set(expected_heads) - seen_heads):
        if head_chain in archived and seq <= archived[head_chain][0]:
            continue  # moved to an archive file, which proves it (offline.py)
        result.breaks.append(
            Break(
                None,
                head_chain,
                seq,
                f"checkpointed head #{seq} is missing (records removed from the end)",
            )
        )
    if progress:
        progress(result.records, max(total, result.records))
    return result
