"""Benchmark the live board with 100,000 live journeys in PostgreSQL.

Fills a throw-away database (``<name>_bench`` beside ``DATABASE_URL``'s database) with 100,000
live and 20,000 finished journeys, then times, through Django's test client:

- a bare baseline: ``/healthz`` (one ``SELECT 1``), and a plain logged-in page (the console
  shell with no data), measured in the same run;
- the full board render (first page), for a supervisor (two definitions) and an admin (all);
- the unchanged poll (the 204 answer to a poll whose change marker is current).

It prints medians, 95th percentiles, query counts and the ratios to the baselines. Timings
depend on the machine; the ratios are what to compare. ``--keep`` keeps the filled database
for the next run (much faster).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

LIVE = 100_000
FINISHED = 20_000


def _setup() -> None:
    import sys
    from pathlib import Path

    import django

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # static files come from finders
    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()


def _fill(live: int, finished: int) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from journeys.models import Agent, Journey, JourneyDefinition

    if Journey.objects.count() >= live:
        print(f"   reusing {Journey.objects.count()} journeys")
        return
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", customers=50, stdout=quiet)
    rng = random.Random(11)
    definitions = [(d, d.current_version()) for d in JourneyDefinition.objects.all()]
    agent = Agent.objects.first()
    now = timezone.now()
    statuses = [Journey.Status.RUNNING] * 17 + [Journey.Status.WAITING_APPROVAL] * 2 + [Journey.Status.HUMAN]
    context = {
        "request": {"reason": "lost", "merchant": "Northwind Grocers"},
        "facts": {f"fact_{i}": "x" * 40 for i in range(12)},
        "results": {},
        "guidance": [],
    }
    started = time.perf_counter()
    batch: list[Journey] = []
    for n in range(live + finished):
        definition, version = definitions[n % len(definitions)]
        step = rng.choice(version.steps)["key"]
        created = now - timedelta(minutes=rng.uniform(0, 600))
        status = rng.choice(statuses) if n < live else Journey.Status.COMPLETED
        batch.append(
            Journey(
                definition=definition,
                version=version,
                customer_ref=f"CUST-{rng.randint(1, 50):05d}",
                status=status,
                current_step=step,
                agent=agent,
                waiting_on=Journey.WaitingOn.APPROVAL if status == Journey.Status.WAITING_APPROVAL else "",
                sla_deadline=created + timedelta(minutes=version.sla_minutes),
                created_at=created,
                state_changed_at=created + timedelta(minutes=rng.uniform(0, 5)),
                context=context,
                finished_at=now if status == Journey.Status.COMPLETED else None,
            )
        )
        if len(batch) == 5000:
            Journey.objects.bulk_create(batch)
            batch = []
    Journey.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk insert: statistics, and the visibility map that
        # lets the board's counters use an index-only scan.
        cursor.execute("VACUUM ANALYZE journeys_journey")
    took = time.perf_counter() - started
    print(f"   filled {live:,} live + {finished:,} finished journeys in {took:.1f} s")


def _time(fn: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(3):
        fn()  # warm up
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _queries(fn: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx)


def _measure(rounds: int) -> None:
    import re

    from django.contrib.auth import get_user_model
    from django.test import Client

    users = get_user_model().objects
    results: dict[str, tuple[float, float, int]] = {}

    anonymous = Client()
    results["baseline: /healthz (SELECT 1)"] = (
        *_time(lambda: anonymous.get("/healthz"), rounds * 4),
        _queries(lambda: anonymous.get("/healthz")),
    )
    for username in ("supervisor", "admin"):
        client = Client()
        client.force_login(users.get(username=username))

        def shell(c: Client = client) -> object:
            return c.get("/no-access/")  # the plain console shell: login, menu, no data

        def render(c: Client = client) -> object:
            return c.get("/board/")

        def filtered(c: Client = client) -> object:
            return c.get("/board/", {"needs_person": "on", "page": 3})

        results[f"baseline: plain page ({username})"] = (*_time(shell, rounds * 2), _queries(shell))
        results[f"board render ({username})"] = (*_time(render, rounds), _queries(render))
        results[f"board render, filtered, page 3 ({username})"] = (
            *_time(filtered, rounds),
            _queries(filtered),
        )
        # The marker carries a one-minute clock bucket: take a fresh one right before timing.
        cursor = re.search(r'data-cursor="([^"]+)"', render().content.decode()).group(1)

        def poll(c: Client = client, cur: str = cursor) -> object:
            return c.get("/board/", {"cursor": cur}, HTTP_HX_REQUEST="true")

        assert poll().status_code == 204, "the marker moved during the benchmark"
        results[f"unchanged poll -> 204 ({username})"] = (*_time(poll, rounds * 4), _queries(poll))

    healthz = results["baseline: /healthz (SELECT 1)"][0]
    header = f"{'what':<48} {'median ms':>10} {'p95 ms':>8} {'queries':>8}"
    print(f"   {header} {'x healthz':>10} {'x plain page':>13}")
    for name, (median, p95, queries) in results.items():
        user = "admin" if "(admin)" in name else "supervisor"
        plain = results[f"baseline: plain page ({user})"][0]
        row = f"{name:<48} {median:>10.2f} {p95:>8.2f} {queries:>8}"
        print(f"   {row} {median / healthz:>10.1f} {median / plain:>13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the filled database for the next run")
    parser.add_argument("--rounds", type=int, default=30)
    args, _ = parser.parse_known_args()
    _setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("The board benchmark needs PostgreSQL: set DATABASE_URL.")
    # Its own database, beside (never instead of) the test suite's test_<name>.
    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_bench"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    try:
        print(f"   database {name}")
        _fill(LIVE, FINISHED)
        _measure(args.rounds)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
