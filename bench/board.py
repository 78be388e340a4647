"""Benchmark the live board at 100,000 live journeys and 10,000,000 events.

Uses ``<name>_bench_data`` (filled by ``bench/generate.py`` with COPY when it holds less; kept
for the next run), then times through Django's test client, for a supervisor (two definitions)
and an admin (all):

- the full board render (first page) against the bare indexed SELECT of the same 50 rows
  (``journey_live_sla``) plus the grouped counters, run on a plain cursor;
- the unchanged poll (the 204 answer to a poll whose change marker is current) against a
  minimal logged-in view that answers 204 (session + user, nothing else);
- for scale: ``/healthz`` (one ``SELECT 1``) and a plain logged-in page.

``BENCH_SCALE`` scales the data set; ``--rounds`` the samples.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, scaled
from generate import prepare

LIVE = scaled(100_000)
FINISHED = scaled(20_000)
EVENTS = scaled(10_000_000)

BARE_PAGE = """
SELECT j.id, j.customer_ref, j.status, j.waiting_on, j.current_step, j.sla_deadline, j.state_changed_at,
       j.controller_user_id, j.needs_person_reason, d.name, d.key, a.name
FROM journeys_journey j
JOIN journeys_journeydefinition d ON d.id = j.definition_id
LEFT JOIN journeys_agent a ON a.id = j.agent_id
WHERE j.status IN ('running', 'waiting_approval', 'human') AND j.definition_id = ANY(%s)
ORDER BY j.sla_deadline, j.id LIMIT 50
"""
BARE_COUNTS = """
SELECT definition_id, status, count(sla_deadline) FROM journeys_journey
WHERE status IN ('running', 'waiting_approval', 'human') AND definition_id = ANY(%s)
GROUP BY definition_id, status
"""


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

        c_min = Client()
        c_min.force_login(users.get(username=username))

        def minimal(c: Client = c_min) -> object:
            return c.get("/bench/minimal-poll/", HTTP_HX_REQUEST="true")

        assert minimal().status_code == 204
        results[f"baseline: minimal 204 view ({username})"] = (*_time(minimal, rounds * 4), _queries(minimal))

        from django.db import connection

        visible = [pk for pk, _, _ in _visible(users.get(username=username))]

        def bare(ids: list[int] = visible) -> object:
            with connection.cursor() as cursor:
                cursor.execute(BARE_PAGE, [ids])
                cursor.fetchall()
                cursor.execute(BARE_COUNTS, [ids])
                return cursor.fetchall()

        results[f"baseline: bare indexed SELECT ({username})"] = (*_time(bare, rounds * 2), 2)

    header = f"{'what':<48} {'median ms':>10} {'p95 ms':>8} {'queries':>8}"
    print(f"   {header}")
    for name, (median, p95, queries) in results.items():
        print(f"   {name:<48} {median:>10.2f} {p95:>8.2f} {queries:>8}")
    for username in ("supervisor", "admin"):
        base = results[f"baseline: bare indexed SELECT ({username})"]
        render = results[f"board render ({username})"]
        report(f"board render p50 vs bare SELECT ({username})", render[0], base[0], "ms", higher_is_better=False)
        report(f"board render p95 vs bare SELECT ({username})", render[1], base[1], "ms", higher_is_better=False)
        base = results[f"baseline: minimal 204 view ({username})"]
        poll = results[f"unchanged poll -> 204 ({username})"]
        report(f"unchanged poll p50 vs minimal view ({username})", poll[0], base[0], "ms", higher_is_better=False)
        report(f"unchanged poll p95 vs minimal view ({username})", poll[1], base[1], "ms", higher_is_better=False)


def _visible(user) -> list:
    from console.board import _visible_definitions

    return _visible_definitions(user)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args, _ = parser.parse_known_args()
    prepare("data", live=LIVE, finished=FINISHED, events=EVENTS)
    from django.conf import settings
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.ROOT_URLCONF = "bench.minimal_urls"
    _measure(args.rounds)


if __name__ == "__main__":
    main()
