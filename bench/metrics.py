"""Benchmark the metrics page at 10,000,000 events against a raw percentile/count query.

Uses ``<name>_bench_data`` (``bench/generate.py``). The page reads roll-ups that Celery beat keeps
current, so the benchmark first rebuilds them from scratch (``rollup_rebuild``, timed: this is
what a fresh install or ``manage.py rebuild_metrics`` costs at this size), then times:

- ``/metrics/`` for the compliance officer (every definition, the default 30-day window and the
  window before it) through Django's test client;
- the raw query a team would otherwise run: per definition, journey counts by outcome and the
  p50/p90 time to resolution over the window, plus event counts by kind over the window.

``BENCH_SCALE`` scales the data set; ``--rounds`` the samples.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from board import EVENTS, FINISHED, LIVE, _time
from common import report
from generate import prepare

RAW_JOURNEYS = """
SELECT definition_id, count(*),
       count(*) FILTER (WHERE status = 'completed'),
       count(*) FILTER (WHERE status = 'abandoned'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
FROM journeys_journey WHERE created_at >= now() - interval '30 days' GROUP BY definition_id
"""
RAW_EVENTS = "SELECT kind, count(*) FROM journeys_event WHERE at >= now() - interval '30 days' GROUP BY kind"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args, _ = parser.parse_known_args()
    prepare("data", live=LIVE, finished=FINISHED, events=EVENTS)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from console.metrics.rollups import rollup_rebuild
    from journeys.models import Event

    setup_test_environment()
    events = Event.objects.count()
    started = time.perf_counter()
    rollup_rebuild()
    rebuild = time.perf_counter() - started
    print(f"   roll-ups rebuilt from {events:,} events in {rebuild:.1f} s ({events / rebuild:,.0f} events/s)")

    client = Client()
    client.force_login(get_user_model().objects.get(username="compliance"))
    assert client.get("/metrics/").status_code == 200

    def page() -> object:
        return client.get("/metrics/")

    def raw() -> object:
        with connection.cursor() as cursor:
            cursor.execute(RAW_JOURNEYS)
            cursor.fetchall()
            cursor.execute(RAW_EVENTS)
            return cursor.fetchall()

    page_p50, page_p95 = _time(page, args.rounds)
    raw_p50, raw_p95 = _time(raw, args.rounds)
    report("metrics page p50 vs raw query (ms)", page_p50, raw_p50, "ms", higher_is_better=False)
    report("metrics page p95 vs raw query (ms)", page_p95, raw_p95, "ms", higher_is_better=False)


if __name__ == "__main__":
    main()
