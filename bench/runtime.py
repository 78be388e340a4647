"""Benchmark: agent turns per second against bare Celery hops, measured in the same run.

A *hop* is the bare minimum the runtime cannot avoid: a task that enqueues the next task.
A *turn* is a real agent turn (lock, lease, agent call, proposals, policy, execution, events,
enqueue the next turn). Both run as 20 parallel chains on the same in-process worker and broker,
so the ratio says what the runtime costs on top of Celery itself.

Run with `make bench` (PostgreSQL from DATABASE_URL, using a separate `<name>_bench_runtime` database).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHAINS = int(os.environ.get("BENCH_CHAINS", "20"))


def bench_database_url() -> str:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/handoff"))
    name = url.path.lstrip("/") or "handoff"
    return urlunsplit(url._replace(path=f"/{name}_bench_runtime"))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [parts.path.lstrip("/")]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')


def main() -> None:
    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    os.environ["CELERY_QUEUE"] = f"handoff-bench-{os.getpid()}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from celery import shared_task
    from celery.contrib.testing.worker import start_worker
    from django.core.management import call_command

    from console.celery import app
    from journeys.models import Agent, Journey
    from journeys.services import journey_start

    call_command("migrate", verbosity=0)
    call_command("seed_demo", customers=40, stdout=open(os.devnull, "w"))  # noqa: SIM115
    Agent.objects.filter(name="Scripted agent").update(config={})

    done = threading.Semaphore(0)

    @shared_task(name="bench.hop")
    def hop(remaining: int) -> None:
        if remaining > 0:
            hop.delay(remaining - 1)
        else:
            done.release()

    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=[os.environ["CELERY_QUEUE"]],
    ):
        # Baseline: bare hops.
        hops_per_chain = 15
        started = time.perf_counter()
        for _ in range(CHAINS):
            hop.delay(hops_per_chain - 1)
        for _ in range(CHAINS):
            done.acquire(timeout=300)
        bare = time.perf_counter() - started
        bare_rate = CHAINS * hops_per_chain / bare

        # Measured: real journeys (lost card: no customer replies needed).
        started = time.perf_counter()
        ids = [
            journey_start(definition="lost_card", customer_ref=f"CUST-{n % 40 + 1:05d}", request={"reason": "lost"}).pk
            for n in range(CHAINS)
        ]
        while Journey.objects.filter(pk__in=ids, status=Journey.Status.RUNNING).exists():
            time.sleep(0.05)
        measured = time.perf_counter() - started
        turns = sum(Journey.objects.filter(pk__in=ids).values_list("turn_seq", flat=True))
        turn_rate = turns / measured

    print(f"bare Celery hops : {CHAINS * hops_per_chain} in {bare:.2f} s = {bare_rate:.1f}/s")
    print(f"agent turns      : {turns} in {measured:.2f} s = {turn_rate:.1f}/s")
    print(f"ratio            : one agent turn costs {bare_rate / turn_rate:.2f}x a bare hop")


if __name__ == "__main__":
    main()
