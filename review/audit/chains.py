"""Walking the audit chains link by link: the part of verification that reads and hashes every
record, run by ``verify.py`` in its own process or in several worker processes at once.

This module imports neither Django nor the models (only ``offline.py``, standard library), so a
worker process started with the spawn method needs no ``django.setup()``: it reads its range of
chains on a psycopg connection of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .offline import GENESIS, SORTED_HASHED_FIELDS, payload_digest, record_hash_sorted


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
class Walked:
    """What walking some chains found: counts, the first break of each broken chain (in chain
    order), and the checkpointed heads that were seen."""

    records: int = 0
    chains: int = 0
    breaks: list[Break] = field(default_factory=list)
    seen_heads: set[tuple[str, int]] = field(default_factory=set)


# Records are read as tuples in pages along the (chain, seq) index: no model instances, no
# long-running transaction or server-side cursor materialised up front, and progress stays visible.
PAGE = 20_000
# id, hash, payload (JSON text), salt, then the hashed fields in canonical (sorted) order with
# ``at`` as the export writes it, so the tail of a row is exactly what the record hash covers.
_HEAD = ["id", "hash", "payload", "payload_salt"]
FIELDS = [*_HEAD, *SORTED_HASHED_FIELDS]
CHAIN, SEQ, PREV_HASH, PAYLOAD_SHA256 = (FIELDS.index(n) for n in ("chain", "seq", "prev_hash", "payload_sha256"))
HASHED_FROM = len(_HEAD)
_PG_AT = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def pages_postgresql(
    cursor: Any, table: str, low: str | None = None, high: str | None = None, page: int = PAGE
) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of raw rows of the chains in ``[low, high)`` (``None``: unbounded) on a DB-API
    cursor (Django's or psycopg's); PostgreSQL formats the timestamp and hands the payload over as
    JSON text, parsed by ``json.loads`` when needed."""
    columns = ", ".join(_PG_AT if name == "at" else "payload::text" if name == "payload" else name for name in FIELDS)
    bounds, bound_params = [], []
    if low is not None:
        bounds.append("chain >= %s")
        bound_params.append(low)
    if high is not None:
        bounds.append("chain < %s")
        bound_params.append(high)
    where = " AND ".join(bounds)
    first = f"SELECT {columns} FROM {table}{' WHERE ' + where if where else ''} ORDER BY chain, seq LIMIT %s"
    after = (
        f"SELECT {columns} FROM {table} WHERE (chain, seq) > (%s, %s){' AND ' + where if where else ''} "
        "ORDER BY chain, seq LIMIT %s"
    )
    cursor.execute(first, [*bound_params, page])
    while True:
        rows = cursor.fetchall()
        if rows:
            yield rows
        if len(rows) < page:
            return
        last = rows[-1]
        cursor.execute(after, [last[CHAIN], last[SEQ], *bound_params, page])


def walk(
    pages: Iterable[list[tuple[Any, ...]]],
    *,
    archived: dict[str, list[Any]],
    expected_heads: dict[tuple[str, int], str],
    on_page: Callable[[int], None] | None = None,
) -> Walked:
    """Check every record of the pages, which hold whole chains in (chain, seq) order. ``on_page``
    is told the number of records checked so far after each page."""
    walked = Walked()
    breaks, seen_heads = walked.breaks, walked.seen_heads
    # Per chain: the (seq, hash) the next record must follow, and whether a break was reported.
    chain: str | None = None
    prev_seq, prev_hash, chain_broken = 0, GENESIS, False
    records = chains = 0
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
        if on_page:
            on_page(records)
    walked.records, walked.chains = records, chains
    return walked


def walk_range(
    index: int,
    conninfo: dict[str, Any],
    role: str | None,
    table: str,
    low: str | None,
    high: str | None,
    archived: dict[str, list[Any]],
    expected_heads: dict[tuple[str, int], str],
    messages: Any,
) -> None:
    """A worker process: walk the chains in ``[low, high)`` on a connection of its own (as the
    parent's role), reporting ``("page", index, records)`` after each page and finally
    ``("done", index, Walked)`` or ``("error", index, text)`` on the ``messages`` queue."""
    try:
        import psycopg
        from psycopg import sql

        with psycopg.connect(**conninfo, autocommit=True) as conn, conn.cursor() as cursor:
            if role:
                cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            walked = walk(
                pages_postgresql(cursor, table, low, high),
                archived=archived,
                expected_heads=expected_heads,
                on_page=lambda records: messages.put(("page", index, records)),
            )
        messages.put(("done", index, walked))
    except BaseException as exc:  # reported to the parent, which raises
        messages.put(("error", index, f"{type(exc).__name__}: {exc}"))
