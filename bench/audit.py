"""Benchmark the audit trail: appends against bare INSERTs, verification against a bare SELECT.

- Append: ``audit_append`` of N records over 100 journey chains, one transaction each (as a
  change and its record commit together), against INSERTs of the very same rows into a copy of
  the table (same columns and indexes, no chain lock, no head read, no hashing), one
  transaction each, on the same connection.
- Verify: ``audit_verify`` (every chain, every link, every hash) as it runs by default (on
  PostgreSQL, worker processes over ranges of chains; the line says how it ran) in records/s
  against a bare sequential SELECT of the same columns in the same order, fetched into Python
  (jsonb parsed), all warm, the median of three runs each. The verifier in one process
  (``processes=1``) is measured in the same rounds, for the before and after.

Database ``<name>_bench_audit`` (fresh each run); ``BENCH_SCALE`` scales N (default 20,000).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, scaled, setup_django

RECORDS = scaled(20_000, minimum=200)
CHAINS = 100
COLUMNS = (
    "chain, seq, prev_hash, hash, at, kind, actor_kind, actor_label, actor_user_id, actor_agent_id, journey_id, "
    "definition_id, customer_ref, action_type, decision, proposal_id, event_id, summary, payload, payload_sha256, "
    "payload_salt"
)


def main() -> None:
    url = setup_django("audit", fresh=True)
    import psycopg
    from django.db import connection, transaction

    from review.audit.chain import audit_append
    from review.audit.verify import audit_verify

    # Product: the real append path.
    started = time.perf_counter()
    for n in range(RECORDS):
        journey = n % CHAINS + 1
        with transaction.atomic():
            audit_append(
                chain=f"journey:{journey}",
                kind="action_executed",
                summary=f"Refund of {n % 300}.00 executed",
                actor_kind="agent",
                actor_label="Scripted agent",
                journey_id=journey,
                definition_id=1,
                customer_ref=f"CUST-{journey:05d}",
                action_type="issue_refund",
                decision="allow",
                payload={"amount": f"{n % 300}.00", "account": f"ACC-{journey:05d}", "turn": n // CHAINS},
            )
    append_rate = RECORDS / (time.perf_counter() - started)

    # Baseline: the same rows, bare INSERTs into a copy of the table.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_audit_copy (LIKE review_auditrecord INCLUDING ALL)")
        cursor.execute(f"SELECT {COLUMNS} FROM review_auditrecord ORDER BY id")
        rows = cursor.fetchall()
    placeholders = ", ".join(["%s"] * len(COLUMNS.split(",")))
    insert = f"INSERT INTO bench_audit_copy ({COLUMNS}) VALUES ({placeholders})"
    from psycopg.types.json import Jsonb

    rows = [(*row[:18], Jsonb(row[18]), *row[19:]) for row in rows]
    started = time.perf_counter()
    for row in rows:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(insert, row)
    insert_rate = len(rows) / (time.perf_counter() - started)

    # Verify: the real verifier against a bare SELECT of the same columns, same order. Both run
    # once untimed (imports, plans, caches warm), then three times each, alternating; the median
    # of each is reported, so a burst of load beside the benchmark does not decide the ratio.
    result = audit_verify()
    assert result.ok, result.summary()
    verify_times: list[float] = []
    alone_times: list[float] = []
    select_times: list[float] = []
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for round_ in range(4):
            started = time.perf_counter()
            result = audit_verify()
            # Workers started by fork closed this process's connection first: the reconnect is theirs.
            connection.ensure_connection()
            if round_:
                verify_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            alone = audit_verify(processes=1)
            if round_:
                alone_times.append(time.perf_counter() - started)
            assert (alone.records, alone.breaks) == (result.records, result.breaks)
            started = time.perf_counter()
            cursor.execute(f"SELECT id, {COLUMNS} FROM review_auditrecord ORDER BY chain, seq")
            count = sum(1 for _ in cursor)
            if round_:
                select_times.append(time.perf_counter() - started)
    verify_rate = result.records / statistics.median(verify_times)
    alone_rate = alone.records / statistics.median(alone_times)
    select_rate = count / statistics.median(select_times)

    print(f"   {RECORDS:,} records over {CHAINS} chains; verified {result.records:,} records")
    print(f"   verify_audit ran in {result.mode}; the one-process line in {alone.mode}")
    report("append (records/s)", append_rate, insert_rate, "rec/s", higher_is_better=True)
    report("verify_audit (records/s)", verify_rate, select_rate, "rec/s", higher_is_better=True)
    report("verify_audit in one process (records/s)", alone_rate, select_rate, "rec/s", higher_is_better=True)
    print("   target: verify_audit >= 0.5x the bare SELECT")


if __name__ == "__main__":
    main()
