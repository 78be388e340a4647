"""Benchmark: a governed agent step against the honest baseline, and journeys end to end.

Product: lost-card journeys run by the scripted agent (no customer replies needed) — every turn
is a real turn of ``journeys.tasks.run_step``: lock, lease, agent call, proposals through the
policy engine, idempotent execution against the simulated core bank, events and their
hash-chained audit records, the next turn sent after commit (carried on by the same task while
its time allows, ``HANDOFF_CONTINUE_SECONDS``; else through the broker). Its steps are timed
per turn, from the runtime's own line per turn.

Baseline: Celery chains of the same length whose task does the minimum durable work a step
needs — lock one row, UPDATE it, INSERT one row, in one transaction — and enqueues the next
step after commit (``bench/probe.py``).

Both run on the same real worker process (prefork, concurrency 2, as ``make run``), the same
broker and database server, with the same number of chains in flight. Reported per step:
execution time p50/p95 (a turn's start to end; a baseline task's start to end, from Celery's
signals), the interval between
consecutive steps of one chain p50/p95 (queue hop included), throughput, rows written per step,
and journeys (chains) completed per minute.

``make bench`` (database ``<name>_bench_runtime``); ``BENCH_SCALE`` scales the number of chains.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from common import (
    ROOT,
    bench_database_url,
    cpu_between,
    ensure_database,
    machine_cpu,
    p50,
    p95,
    report,
    scaled,
    settle_stats,
    setup_django,
    table_writes,
    writes_between,
)

CHAINS = int(os.environ.get("BENCH_CHAINS", scaled(20, minimum=4)))
CONCURRENCY = 2


def read_probe(probe_dir: Path, task_name: str) -> list[tuple[str, float, float]]:
    rows = []
    for path in probe_dir.glob("*.tsv"):
        for line in path.read_text().splitlines():
            name, first, start, end = line.split("\t")
            if name == task_name:
                rows.append((first, float(start), float(end)))
    return rows


def step_figures(rows: list[tuple[str, float, float]]) -> dict[str, float]:
    execution = [(end - start) * 1000 for _, start, end in rows]
    by_chain: dict[str, list[float]] = defaultdict(list)
    for chain, _, end in rows:
        by_chain[chain].append(end)
    intervals = []
    for ends in by_chain.values():
        ends.sort()
        intervals += [(b - a) * 1000 for a, b in itertools.pairwise(ends)]
    span = max(end for _, _, end in rows) - min(start for _, start, _ in rows)
    return {
        "steps": len(rows),
        "exec_p50": p50(execution),
        "exec_p95": p95(execution),
        "interval_p50": p50(intervals),
        "interval_p95": p95(intervals),
        "rate": len(rows) / span,
        "span": span,
    }


def turns_in_process(journeys: int) -> dict[str, float]:
    """Lost-card journeys driven turn by turn in this process (the task's enqueue caught, no
    broker, no worker): round trips per turn (BEGIN, COMMIT and savepoints included; statements sent
    together as one query count once), time per turn,
    and the part of it spent waiting on the database."""
    import collections
    from unittest import mock

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from journeys import runtime, tasks
    from journeys.services import journey_start

    queue: collections.deque = collections.deque()

    class Caught:
        def delay(self, *args):
            queue.append(args)

        def apply_async(self, args=(), countdown=None):
            queue.append(tuple(args))

    in_sql = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_sql[0] += time.perf_counter() - started

    per_turn, statements = [], 0
    with mock.patch.object(tasks, "run_step", Caught()):
        for n in range(journeys):
            journey_start(definition="lost_card", customer_ref=f"CUST-{n % 40 + 1:05d}", request={"reason": "lost"})
        turn = 0
        while queue:
            args = queue.popleft()
            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed):
                started = time.perf_counter()
                runtime.run_turn(*args, token=f"in-process-{turn}")
                per_turn.append((time.perf_counter() - started) * 1000)
            # A BEGIN sent with the pipelined statements after it is no round trip of its own.
            queries = captured.captured_queries
            statements += len(queries) - sum(
                1 for query, after in itertools.pairwise(queries) if query["sql"] == "BEGIN" and after.get("with_begin")
            )
            turn += 1
    return {
        "turns": turn,
        "statements": statements / turn,
        "ms_p50": p50(per_turn),
        "ms_mean": sum(per_turn) / turn,
        "sql_ms_mean": in_sql[0] * 1000 / turn,
    }


def main() -> None:
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    queue = f"handoff-bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_QUEUE"] = queue
    url = setup_django("runtime", fresh=True)
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    import bench.probe  # noqa: F401 - registers the baseline task with this process's app
    from bench.probe import SCHEMA, durable_step, statement_floor_step
    from journeys.models import Agent, Journey
    from journeys.services import journey_start

    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", customers=max(40, CHAINS), stdout=quiet)
    Agent.objects.filter(name="Scripted agent").update(config={})
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA)
    in_process = turns_in_process(max(4, CHAINS // 2))
    statements = round(in_process["statements"])
    connection.close()

    probe_dir = Path(tempfile.mkdtemp(prefix="handoff-probe-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BENCH_PROBE_DIR": str(probe_dir),
        "C_FORCE_ROOT": "1",
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-I",
            "bench.probe",
            "-Q",
            queue,
            f"--concurrency={CONCURRENCY}",
            "--pool=prefork",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stats = psycopg.connect(url, autocommit=True)
    try:
        # Warm up: the worker is ready once a one-step chain went through.
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_chain (id) VALUES (0) ON CONFLICT DO NOTHING")
        durable_step.delay(0, 1)
        deadline = time.monotonic() + 120
        while not stats.execute("SELECT 1 FROM bench_step WHERE chain_id = 0").fetchone():
            if time.monotonic() > deadline:
                raise SystemExit("the benchmark worker did not start")
            time.sleep(0.1)
        for path in probe_dir.glob("*.tsv"):
            path.unlink()
        settle_stats()  # the warm-up's table statistics land before the first snapshot

        # Product: CHAINS lost-card journeys at once.
        before = table_writes(stats)
        cpu_before = machine_cpu()
        started = time.perf_counter()
        ids = [
            journey_start(definition="lost_card", customer_ref=f"CUST-{n % 40 + 1:05d}", request={"reason": "lost"}).pk
            for n in range(CHAINS)
        ]
        while Journey.objects.filter(pk__in=ids, status=Journey.Status.RUNNING).exists():
            time.sleep(0.05)
        product_minutes = (time.perf_counter() - started) / 60
        product_cpu = machine_cpu()
        settle_stats()
        product_writes = writes_between(before, table_writes(stats), max(1, len(read_probe(probe_dir, "turn"))))
        statuses = sorted(set(Journey.objects.filter(pk__in=ids).values_list("status", flat=True)))
        product = step_figures(read_probe(probe_dir, "turn"))
        product_tasks = len(read_probe(probe_dir, "journeys.tasks.run_step"))
        product_busy, product_cpu_ms = cpu_between(cpu_before, product_cpu, product["steps"])
        steps_per_chain = round(product["steps"] / CHAINS)

        # Baseline: CHAINS chains of the same length at once.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_chain (id) SELECT g FROM generate_series(1, %s) g ON CONFLICT DO NOTHING", [CHAINS]
            )
        connection.close()
        before = table_writes(stats)
        cpu_before = machine_cpu()
        started = time.perf_counter()
        for chain in range(1, CHAINS + 1):
            durable_step.delay(chain, steps_per_chain)
        target = CHAINS * steps_per_chain
        while stats.execute("SELECT count(*) FROM bench_step WHERE chain_id > 0").fetchone()[0] < target:
            time.sleep(0.02)
        baseline_minutes = (time.perf_counter() - started) / 60
        baseline_busy, baseline_cpu_ms = cpu_between(cpu_before, machine_cpu(), target)
        settle_stats()
        baseline_writes = writes_between(before, table_writes(stats), target)
        baseline = step_figures(read_probe(probe_dir, "bench.durable_step"))

        # The governed turn's number of round trips as raw SQL, one statement each, same chains and length.
        with connection.cursor() as cursor:
            cursor.execute("UPDATE bench_chain SET step = 0")
        connection.close()
        started = time.perf_counter()
        for chain in range(1, CHAINS + 1):
            statement_floor_step.delay(chain, steps_per_chain, statements)
        while stats.execute("SELECT coalesce(sum(step), 0) FROM bench_chain WHERE id > 0").fetchone()[0] < target:
            time.sleep(0.02)
        floor = step_figures(read_probe(probe_dir, "bench.statement_floor_step"))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        stats.close()

    # LangGraph with its PostgreSQL checkpointer: same steps, chains, concurrency and server.
    langgraph = None
    try:
        import langgraph_chain
    except ImportError:
        print("   LangGraph is not installed: pip install -e '.[bench]' (make bench does) to compare with it")
    else:
        lg_url = bench_database_url("langgraph")
        ensure_database(lg_url, fresh=True)
        langgraph_chain.setup(lg_url)
        with psycopg.connect(lg_url, autocommit=True) as lg_stats:
            before = table_writes(lg_stats)
            marks = langgraph_chain.run(lg_url, steps=steps_per_chain, chains=CHAINS, concurrency=CONCURRENCY)
            time.sleep(1.2)
            lg_stats.execute("SELECT pg_stat_clear_snapshot()")
            langgraph_writes = writes_between(before, table_writes(lg_stats), len(marks))
        per_step = [(end - start) * 1000 for _, start, end in marks]
        span = max(end for _, _, end in marks) - min(start for _, start, _ in marks)
        langgraph = {"p50": p50(per_step), "p95": p95(per_step), "rate": len(marks) / span}

    print(f"   {CHAINS} chains in flight, {steps_per_chain} steps each, worker concurrency {CONCURRENCY}")
    print(f"   journeys finished as: {', '.join(statuses)}")
    print(
        f"   governed: {product['steps']} turns in {product_tasks} tasks (a worker carries a journey on "
        "without the broker's hop while its task has run under HANDOFF_CONTINUE_SECONDS)"
    )
    report("step execution p50 (ms)", product["exec_p50"], baseline["exec_p50"], "ms", higher_is_better=False)
    report("step execution p95 (ms)", product["exec_p95"], baseline["exec_p95"], "ms", higher_is_better=False)
    report(
        "step to next step p50 (ms, queue hop included)",
        product["interval_p50"],
        baseline["interval_p50"],
        "ms",
        higher_is_better=False,
    )
    report(
        "step to next step p95 (ms, queue hop included)",
        product["interval_p95"],
        baseline["interval_p95"],
        "ms",
        higher_is_better=False,
    )
    report("throughput (steps/s)", product["rate"], baseline["rate"], "steps/s", higher_is_better=True)
    report("machine CPU per step, all processes (ms)", product_cpu_ms, baseline_cpu_ms, "ms", higher_is_better=False)
    print(
        f"   -- the machine's CPU was {product_busy:.0%} busy during the governed run, "
        f"{baseline_busy:.0%} during the bare one"
    )
    report(
        "end to end (journeys|chains completed/min)",
        CHAINS / product_minutes,
        CHAINS / baseline_minutes,
        "/min",
        higher_is_better=True,
    )
    print(
        f"   -- in-process, no broker: {in_process['turns']} turns, {in_process['statements']:.1f} round trips a turn "
        f"(BEGIN/COMMIT included; statements sent as one query count once), {in_process['ms_mean']:.1f} ms a turn "
        f"(p50 {in_process['ms_p50']:.1f}), "
        f"{in_process['sql_ms_mean']:.1f} ms of it waiting on the database"
    )
    print(
        f"   -- against the governed turn's {statements} round trips as raw SQL, one statement each, no Python "
        "(same worker, same chains)"
    )
    report("step execution p50 (ms)", product["exec_p50"], floor["exec_p50"], "ms", higher_is_better=False)
    report("throughput (steps/s)", product["rate"], floor["rate"], "steps/s", higher_is_better=True)
    report(
        "round trips alone vs the bare step, p50 (ms)",
        floor["exec_p50"],
        baseline["exec_p50"],
        "ms",
        higher_is_better=False,
    )
    print(f"   product writes per step : {product_writes}")
    print(f"   baseline writes per step: {baseline_writes}")
    print("   targets: latency ratio <= 1.5, throughput ratio >= 0.6")
    if langgraph:
        print("   -- against LangGraph + PostgresSaver (durability=sync), same chains and concurrency")
        # LangGraph runs each process's chains one after another, so its step time has no queue
        # wait in it: compare it with the runtime's execution time per step.
        report(
            "time per step p50 (ms, no queue wait)", product["exec_p50"], langgraph["p50"], "ms", higher_is_better=False
        )
        report(
            "time per step p95 (ms, no queue wait)", product["exec_p95"], langgraph["p95"], "ms", higher_is_better=False
        )
        report("throughput (steps/s)", product["rate"], langgraph["rate"], "steps/s", higher_is_better=True)
        print(f"   LangGraph writes per step: {langgraph_writes}")
        print("   target: throughput ratio >= 1.0 while also writing the hash-chained audit trail")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
