"""Build a large data set quickly with COPY: live and finished journeys and their events.

    python bench/generate.py --live 100000 --finished 20000 --events 10000000

fills ``<name>_bench_data`` (beside ``DATABASE_URL``'s database; ``--what`` picks another
suffix), after migrating it and seeding the demo bank. Journeys are spread over the demo
definitions, their steps and statuses (17:2:1 running, waiting for approval, with a person) and
the last ten hours; events follow each journey's life (started, steps, proposals, decisions,
executions, messages, the end of finished ones) and are spread over the last 30 days so the
metrics windows have something to count. Loading drops the event table's secondary indexes and
rebuilds them afterwards (what a bulk load does), runs with foreign-key triggers off (the rows are
consistent by construction), then VACUUM ANALYZEs. ``BENCH_SCALE`` scales the defaults.

Other benchmarks call ``generate(...)`` directly.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import scaled, setup_django

LIVE_STATUSES = ["running"] * 17 + ["waiting_approval"] * 2 + ["human"]
EVENT_LIFE = [
    ("step_started", "agent"),
    ("action_proposed", "agent"),
    ("action_decided", "system"),
    ("action_executed", "system"),
    ("message_out", "agent"),
    ("message_in", "customer"),
    ("agent_note", "agent"),
    ("step_finished", "agent"),
]
CHUNK = 50_000


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def _copy(cursor, table: str, columns: list[str], lines) -> int:
    """COPY text-format lines into ``table`` in chunks; returns how many rows went in."""
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            count += 1
            if count % CHUNK == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return count


def generate(url: str, *, live: int, finished: int, events: int, seed: int = 7) -> dict[str, float]:
    """Append ``live`` + ``finished`` journeys and ``events`` events to the database at ``url``
    (already migrated and seeded with the demo bank). Returns timings."""
    import psycopg

    rng = random.Random(seed)
    now = datetime.now(UTC)
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.cursor()
        versions = cur.execute(
            "SELECT v.id, v.definition_id, v.spec, v.sla_minutes FROM journeys_definitionversion v "
            "WHERE v.number = (SELECT max(number) FROM journeys_definitionversion w "
            "                  WHERE w.definition_id = v.definition_id)"
        ).fetchall()
        steps = {v[0]: [s["key"] for s in v[2]["steps"]] for v in versions}
        agent_id = cur.execute("SELECT id FROM journeys_agent ORDER BY id LIMIT 1").fetchone()[0]
        customers = [r[0] for r in cur.execute("SELECT ref FROM journeys_corecustomer").fetchall()] or ["CUST-00001"]
        first_id = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM journeys_journey").fetchone()[0]
        context = json.dumps(
            {"request": {"reason": "lost"}, "facts": {f"fact_{i}": "x" * 40 for i in range(12)}, "results": {}}
        )
        cur.execute("SET session_replication_role = replica")  # no FK/audit triggers for generated rows

        total = live + finished
        created: list[datetime] = []

        def journey_lines():
            for n in range(total):
                version_id, definition_id, _, sla = versions[n % len(versions)]
                status = rng.choice(LIVE_STATUSES) if n < live else "completed"
                # Live journeys started in the last ten hours; finished ones over 30 days.
                start = now - timedelta(minutes=rng.uniform(0, 600) if n < live else rng.uniform(0, 30 * 1440))
                created.append(start)
                waiting = "approval" if status == "waiting_approval" else ""
                finished_at = _ts(start + timedelta(minutes=rng.uniform(2, 90))) if n >= live else "\\N"
                changed = _ts(start + timedelta(minutes=rng.uniform(0, 5)))
                yield (
                    f"{first_id + n}\t{rng.choice(customers)}\tchat\t{status}\t{waiting}\t"
                    f"{rng.choice(steps[version_id])}\t0\t{rng.randint(0, 20)}\t0\t0\t\t\\N\t\\N\t"
                    f"{_ts(start + timedelta(minutes=sla))}\t{context}\t\t{_ts(start)}\t{changed}\t{changed}\t"
                    f"{finished_at}\t{agent_id}\t\\N\t\\N\t{version_id}\t{definition_id}\n"
                )

        t0 = time.perf_counter()
        _copy(
            cur,
            "journeys_journey",
            [
                "id",
                "customer_ref",
                "channel",
                "status",
                "waiting_on",
                "current_step",
                "epoch",
                "turn_seq",
                "turn_starts",
                "step_attempts",
                "lease_token",
                "lease_until",
                "next_run_at",
                "sla_deadline",
                "context",
                "needs_person_reason",
                "created_at",
                "state_changed_at",
                "updated_at",
                "finished_at",
                "agent_id",
                "controller_user_id",
                "parent_id",
                "version_id",
                "definition_id",
            ],
            journey_lines(),
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('journeys_journey', 'id'), (SELECT max(id) FROM journeys_journey))"
        )
        timings["journeys_s"] = time.perf_counter() - t0

        # Events: drop the secondary indexes, COPY, rebuild.
        indexes = cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'journeys_event' "
            "AND indexname <> 'journeys_event_pkey'"
        ).fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        first_event = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM journeys_event").fetchone()[0]
        per_journey = max(1, events // max(1, total))

        def event_lines():
            written = 0
            for n in range(total):
                journey_id = first_id + n
                version_id = versions[n % len(versions)][0]
                at = created[n]
                count = per_journey if n < total - 1 else max(1, events - written)
                for k in range(count):
                    kind, actor = ("journey_started", "system") if k == 0 else EVENT_LIFE[k % len(EVENT_LIFE)]
                    if n >= live and k == count - 1:
                        kind, actor = "completed", "agent"
                    at += timedelta(seconds=rng.uniform(0.5, 20))
                    agent = agent_id if actor == "agent" else "\\N"
                    step = steps[version_id][k % len(steps[version_id])]
                    yield (
                        f"{first_event + written}\t{kind}\t{_ts(at)}\t{actor}\t{step}\t0\t"
                        f"{kind.replace('_', ' ')} on {step}\t{{}}\t{agent}\t\\N\t{journey_id}\t\\N\n"
                    )
                    written += 1

        t0 = time.perf_counter()
        copied = _copy(
            cur,
            "journeys_event",
            [
                "id",
                "kind",
                "at",
                "actor_kind",
                "step",
                "epoch",
                "summary",
                "data",
                "actor_agent_id",
                "actor_user_id",
                "journey_id",
                "proposal_id",
            ],
            event_lines(),
        )
        timings["events_copy_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('journeys_event', 'id'), (SELECT max(id) FROM journeys_event))"
        )
        timings["events_index_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cur.execute("VACUUM ANALYZE journeys_journey")
        cur.execute("VACUUM ANALYZE journeys_event")
        timings["vacuum_s"] = time.perf_counter() - t0
        timings["events"] = copied
    return timings


def prepare(what: str, *, live: int, finished: int, events: int, fresh: bool = False) -> str:
    """A migrated, seeded database ``<name>_bench_<what>`` holding at least this much data."""
    url = setup_django(what, fresh=fresh)
    import os

    import psycopg
    from django.core.management import call_command

    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", customers=200, stdout=quiet)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM journeys_journey").fetchone()[0]
        have_events = conn.execute("SELECT count(*) FROM journeys_event").fetchone()[0]
    if have >= live + finished and have_events >= events:
        print(f"   reusing {have:,} journeys and {have_events:,} events in {url.rsplit('/', 1)[1]}")
        return url
    t0 = time.perf_counter()
    timings = generate(url, live=live, finished=finished, events=events)
    print(
        f"   generated {live:,} live + {finished:,} finished journeys and {int(timings['events']):,} events "
        f"in {time.perf_counter() - t0:.1f} s (journeys {timings['journeys_s']:.1f} s, events COPY "
        f"{timings['events_copy_s']:.1f} s, indexes {timings['events_index_s']:.1f} s, "
        f"vacuum {timings['vacuum_s']:.1f} s)"
    )
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=scaled(100_000))
    parser.add_argument("--finished", type=int, default=scaled(20_000))
    parser.add_argument("--events", type=int, default=scaled(10_000_000))
    parser.add_argument("--what", default="data", help="database suffix: <name>_bench_<what>")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database first")
    args = parser.parse_args()
    prepare(args.what, live=args.live, finished=args.finished, events=args.events, fresh=args.fresh)


if __name__ == "__main__":
    main()
