"""Benchmark: 50 supervisors' boards polling for 60 s while the simulator opens 30 journeys a minute.

Starts, against ``<name>_bench_pollers`` (fresh, the demo bank): gunicorn (2 processes of 4
threads, sharing a Redis cache as a deployment would: ``CACHE_URL``), a Celery worker with beat
(concurrency 2) and the customer simulator at 30 journeys a minute. 50 pollers — supervisors of
both teams, each with its own session — poll ``/board/?cursor=…`` as the page does (htmx header,
every 1.5 s, the marker of the last answer),
over keep-alive connections. Printed: answers per second against the rate asked (50 / 1.5 s),
p50/p95 latency, and the share of polls answered 204.

``BENCH_SCALE`` scales the duration (minimum 10 s); ``BENCH_POLLERS`` the number of pollers.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, p50, p95, report, scaled, setup_django

POLLERS = int(os.environ.get("BENCH_POLLERS", "50"))
DURATION = scaled(60, minimum=10)
PERIOD = 1.5
CURSOR = re.compile(r'data-cursor="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poller(port: int, session: str, stop_at: float, samples: list, lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    cursor = ""
    headers = {"Cookie": f"sessionid={session}", "HX-Request": "true"}
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at += PERIOD
        t0 = time.perf_counter()
        try:
            conn.request("GET", f"/board/?cursor={quote(cursor)}", headers=headers)
            resp = conn.getresponse()
            body = resp.read().decode()
            status = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, body = 0, ""
        took = (time.perf_counter() - t0) * 1000
        if status == 200 and (found := CURSOR.search(body)):
            cursor = found.group(1)
        with lock:
            samples.append((status, took))


def main() -> None:
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    queue = f"handoff-bench-{uuid.uuid4().hex[:8]}"
    url = setup_django("pollers", fresh=True)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    sessions = []
    for n in range(POLLERS):
        client = Client()
        client.force_login(get_user_model().objects.get(username="supervisor" if n % 2 == 0 else "supervisor2"))
        sessions.append(client.cookies["sessionid"].value)

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "CELERY_QUEUE": queue, "C_FORCE_ROOT": "1", "LOG_LEVEL": "WARNING"}
    env["HANDOFF_VAR_DIR"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"handoff-bench-{port}")
    # As deployed with several web processes: one shared cache, so a change renders once in all.
    env.setdefault("CACHE_URL", os.environ["CELERY_BROKER_URL"].split("?")[0])
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "console.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--worker-class",
                "gthread",
                "--keep-alive",
                "30",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "-B",
                "-Q",
                queue,
                "--concurrency=2",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-s",
                env["HANDOFF_VAR_DIR"] + "-beat",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "simulate_customers", "--rate", "30", "--seed", "5"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        time.sleep(5)  # let the simulator open a few journeys first
        samples: list[tuple[int, float]] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + DURATION
        threads = [
            threading.Thread(target=poller, args=(port, session, stop_at, samples, lock), daemon=True)
            for session in sessions
        ]
        started = time.monotonic()
        for n, thread in enumerate(threads):
            time.sleep(PERIOD / POLLERS if n else 0)  # spread the pollers over one period
            thread.start()
        for thread in threads:
            thread.join(timeout=DURATION + 60)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    answered = [took for status, took in samples if status in (200, 204)]
    errors = sum(1 for status, _ in samples if status not in (200, 204))
    share_204 = sum(1 for status, _ in samples if status == 204) / max(1, len(samples))
    asked = POLLERS / PERIOD
    print(f"   {POLLERS} pollers every {PERIOD} s for {DURATION} s, simulator at 30 journeys/min")
    print(
        f"   {len(samples)} polls: p50 {p50(answered):.0f} ms, p95 {p95(answered):.0f} ms, "
        f"{share_204:.0%} answered 204, {errors} errors"
    )
    report("answers per second vs asked", len(answered) / elapsed, asked, "req/s", higher_is_better=True)
    report("p95 latency vs the 200 ms target", p95(answered), 200.0, "ms", higher_is_better=False)


if __name__ == "__main__":
    main()
