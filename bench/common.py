"""What every benchmark shares: its own database, a scale knob, percentiles and the report line.

Every benchmark works in a database of its own beside ``DATABASE_URL``'s (``<name>_bench_<what>``),
created when missing and never one the test suite or another benchmark uses. ``BENCH_SCALE``
(default 1) multiplies the sizes and durations, so ``BENCH_SCALE=0.01 make bench`` checks that
every benchmark runs in a minute or two on a busy machine; the figures in docs/performance.md
say at which scale they were taken.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCALE = float(os.environ.get("BENCH_SCALE", "1"))


def scaled(n: float, minimum: int = 1) -> int:
    return max(minimum, int(n * SCALE))


def base_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/handoff")


def bench_database_url(what: str) -> str:
    url = urlsplit(base_url())
    name = url.path.lstrip("/") or "handoff"
    return urlunsplit(url._replace(path=f"/{name}_bench_{what}", query=""))


def admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def ensure_database(url: str, *, fresh: bool = False) -> None:
    """Create the benchmark's database (dropping it first when ``fresh``)."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    if "_bench_" not in name:
        raise SystemExit(f"refusing to touch {name}: benchmark databases are named *_bench_*")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(what: str, *, fresh: bool = False, migrate: bool = True) -> str:
    """Point Django at the benchmark's database, set it up, migrate; returns the URL."""
    url = bench_database_url(what)
    ensure_database(url, fresh=fresh)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    return url


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


def p50(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def p95(samples: list[float]) -> float:
    return percentile(samples, 95)


def report(what: str, product: float, baseline: float, unit: str, *, higher_is_better: bool) -> None:
    """One line: the product's figure, the baseline's, and product/baseline (with which is better)."""
    ratio = product / baseline if baseline else float("nan")
    better = "higher is better" if higher_is_better else "lower is better"
    print(
        f"   {what:<52} product {product:>11.2f} {unit:<9} baseline {baseline:>11.2f} {unit:<9} "
        f"ratio {ratio:>6.2f}  ({better})"
    )


def table_writes(conn) -> dict[str, tuple[int, int]]:
    """Rows inserted and updated so far per table (pg_stat_user_tables), for "what is written"."""
    rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables").fetchall()
    return {name: (ins, upd) for name, ins, upd in rows}


def writes_between(before: dict, after: dict, steps: int) -> str:
    """A compact "table: inserts+updates per step" summary of what a run wrote."""
    parts = []
    for name in sorted(after):
        ins = after[name][0] - before.get(name, (0, 0))[0]
        upd = after[name][1] - before.get(name, (0, 0))[1]
        if ins or upd:
            parts.append(f"{name} +{ins / steps:.2f}i/{upd / steps:.2f}u")
    return ", ".join(parts)


# A backend that commits within a second of its last statistics report keeps the counts for up
# to PostgreSQL's idle interval (10 s) before they reach pg_stat_user_tables: the worker's kept
# connections do, so what one side of a benchmark wrote is read only after that long, or part of
# it is counted in the next side's window.
STATS_SETTLE_SECONDS = 10.5


def settle_stats() -> None:
    import time

    time.sleep(STATS_SETTLE_SECONDS)


def machine_cpu() -> tuple[float, float]:
    """(CPU seconds spent busy, CPU seconds elapsed) on the whole machine so far, summed over its
    cores, from /proc/stat; (nan, nan) where there is none. Busy is everything but idle and I/O
    wait: the worker, the database server, the broker and the benchmark itself."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return float("nan"), float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def cpu_between(before: tuple[float, float], after: tuple[float, float], steps: int) -> tuple[float, float]:
    """(share of the machine's CPU busy, busy CPU milliseconds per step) between two readings."""
    busy, elapsed = after[0] - before[0], after[1] - before[1]
    return (busy / elapsed if elapsed else float("nan")), busy * 1000 / max(1, steps)
