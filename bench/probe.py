"""Loaded into benchmark workers with ``celery worker -I bench.probe``.

- ``bench.durable_step``: the honest baseline for one governed agent step — the minimum durable
  work a step needs (lock the chain's row, UPDATE it, INSERT one row, in one transaction) and
  then enqueue the next step after commit, exactly as the runtime enqueues the next turn.
- ``bench.statement_floor_step``: the round trips of a governed turn without its Python — as
  many single-row statements per step as a governed turn makes round trips to the database
  (measured in the same run; statements a turn sends together as one query count once), shaped
  like one: an autocommit UPDATE that starts the turn, then one transaction that locks the row,
  alternates indexed INSERTs and reads, UPDATEs the row and commits. It tells how much of the
  governed step is the number of statements and how much the work around them.
- Task timing: every task's start and end (wall clock) and first argument are appended to a file
  per worker process in ``BENCH_PROBE_DIR``, so the benchmark computes per-step latency the same
  way for both sides.
- Turn timing: a worker may run several turns of a journey in one task (``journeys.tasks``), so
  the governed side's steps are its turns, read off the runtime's own line per turn (logger
  ``handoff.runtime``, with the turn's duration): its end, its start (end less the duration)
  and its journey are appended as a ``turn`` row.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import connection, transaction

PROBE_DIR = os.environ.get("BENCH_PROBE_DIR", "")
_started: dict[str, float] = {}

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_chain (id integer PRIMARY KEY, step integer NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bench_step (
    id bigserial PRIMARY KEY, chain_id integer NOT NULL, step integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS bench_floor_row (
    id bigserial PRIMARY KEY, chain_id integer NOT NULL, step integer NOT NULL, n integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS bench_floor_row_chain ON bench_floor_row (chain_id, step, n);
"""


@shared_task(name="bench.durable_step", acks_late=True)
def durable_step(chain_id: int, remaining: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT step FROM bench_chain WHERE id = %s FOR UPDATE", [chain_id])
        cursor.execute("UPDATE bench_chain SET step = step + 1 WHERE id = %s RETURNING step", [chain_id])
        (step,) = cursor.fetchone()
        cursor.execute("INSERT INTO bench_step (chain_id, step) VALUES (%s, %s)", [chain_id, step])
        if remaining > 1:
            transaction.on_commit(lambda: durable_step.delay(chain_id, remaining - 1))


@shared_task(name="bench.statement_floor_step", acks_late=True)
def statement_floor_step(chain_id: int, remaining: int, statements: int) -> None:
    # The start: one autocommit statement, as the runtime's begin_turn_at_once.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_chain SET step = step WHERE id = %s", [chain_id])
    # BEGIN, the lock, the final UPDATE and COMMIT are four more; the rest alternate.
    middle = max(0, statements - 5)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT step FROM bench_chain WHERE id = %s FOR UPDATE", [chain_id])
        (step,) = cursor.fetchone()
        for n in range(middle):
            if n % 2:
                cursor.execute(
                    "SELECT n FROM bench_floor_row WHERE chain_id = %s AND step = %s ORDER BY n DESC LIMIT 1",
                    [chain_id, step],
                )
                cursor.fetchone()
            else:
                cursor.execute(
                    "INSERT INTO bench_floor_row (chain_id, step, n) VALUES (%s, %s, %s)", [chain_id, step, n]
                )
        cursor.execute("UPDATE bench_chain SET step = step + 1 WHERE id = %s", [chain_id])
        if remaining > 1:
            transaction.on_commit(lambda: statement_floor_step.delay(chain_id, remaining - 1, statements))


@task_prerun.connect
def _prerun(task_id: str = "", **kwargs) -> None:
    _started[task_id] = time.time()


@task_postrun.connect
def _postrun(task_id: str = "", task=None, args=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    if not PROBE_DIR or started is None:
        return
    first = args[0] if args else ""
    with open(Path(PROBE_DIR) / f"{os.getpid()}.tsv", "a") as out:
        out.write(f"{task.name}\t{first}\t{started:.6f}\t{time.time():.6f}\n")


class _TurnProbe(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) != "turn":
            return
        end = record.created
        start = end - float(getattr(record, "duration_ms", 0.0)) / 1000
        with open(Path(PROBE_DIR) / f"{os.getpid()}.tsv", "a") as out:
            out.write(f"turn\t{record.journey_id}\t{start:.6f}\t{end:.6f}\n")


@worker_process_init.connect
def _probe_turns(**kwargs) -> None:
    if not PROBE_DIR:
        return
    runtime_log = logging.getLogger("handoff.runtime")
    runtime_log.setLevel(logging.INFO)
    runtime_log.propagate = False  # the probe's rows only: the worker's output is not read
    runtime_log.addHandler(_TurnProbe())
