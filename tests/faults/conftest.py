"""Fault tests: real worker processes against real PostgreSQL and Redis, each bounded in time.

The machine's shared PostgreSQL and Redis are never stopped or restarted here: a test that
restarts a service starts a private instance of it on a free port (``private_redis``,
``private_postgres``) and points the worker, web and simulator processes it starts at that
instance. Tests that only kill workers or drop their connections use the suite's own test
database and a queue of their own on the suite's broker.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server")

# Worker processes here react within seconds: short leases and a fast sweeper. The grace stays
# longer than a turn may wait in the queue behind 20 journeys on a loaded machine: the sweeper
# re-sends any due turn that waited longer than the grace, and a shorter one floods the queue
# with duplicate turns (each a no-op, each a locked transaction) faster than the worker drains it.
FAST_RUNTIME = {
    "HANDOFF_STEP_LEASE_SECONDS": "2",
    "HANDOFF_SWEEP_SECONDS": "1",
    "HANDOFF_SWEEP_GRACE_SECONDS": "5",
    "HANDOFF_RETRY_BASE_SECONDS": "0.2",
    "HANDOFF_MAX_STEP_ATTEMPTS": "6",
    "HANDOFF_QUARANTINE_AFTER_STARTS": "6",
    "LOG_LEVEL": "WARNING",
    "C_FORCE_ROOT": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], object], timeout: float, message: str, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (within {timeout:.0f} s)")
        time.sleep(interval)


def suite_database_url(application_name: str = "") -> str:
    """The suite's test database, as a URL worker processes can use."""
    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"{url}?application_name={application_name}" if application_name else url


# --- processes ------------------------------------------------------------------------------


@dataclass
class Processes:
    """Processes a test starts; every one is killed (its whole process group) at teardown."""

    env: dict[str, str]
    logs: Path
    started: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}-{len(self.started)}.log", "wb")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.started.append(proc)
        return proc

    def worker(self, queue: str, *, concurrency: int = 2, beat: bool = True) -> subprocess.Popen:
        args = ["-m", "celery", "-A", "console", "worker", "-Q", queue, f"--concurrency={concurrency}"]
        args += ["--pool=prefork", "--loglevel=WARNING", "--without-gossip", "--without-mingle"]
        if beat:
            args += ["-B", "-s", str(self.logs / f"beat-{uuid.uuid4().hex[:6]}")]
        return self.spawn("worker", *args, env={"CELERY_QUEUE": queue})

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run a management command to completion; fail the test with its output if it fails."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            pytest.fail(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the process and its children (a Celery worker's pool), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                self.kill(proc)


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    env = {
        **os.environ,
        **FAST_RUNTIME,
        "HANDOFF_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }
    procs = Processes(env=env, logs=tmp_path)
    yield procs
    procs.stop_all()


# --- a private Redis --------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, "the private Redis did not start")

    def stop(self) -> None:
        """Stop it hard: queued and unacknowledged messages are gone (no persistence)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        wait_until(lambda: not port_open(self.port), 10, "the private Redis did not stop")


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if not Path(REDIS_SERVER).exists():
        pytest.fail(f"redis-server not found at {REDIS_SERVER} (set REDIS_SERVER)")
    redis = PrivateRedis(port=free_port(), workdir=tmp_path)
    redis.start()
    yield redis
    redis.stop()


# --- a private PostgreSQL -----------------------------------------------------------------------


@dataclass
class PrivatePostgres:
    port: int
    datadir: Path
    as_user: list[str]

    def url(self, name: str = "handoff") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} -c fsync=off"
        options += " -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        self._ctl("-o", options, "-l", str(self.datadir / "server.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def execute(self, sql: str, params: list | None = None, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A throw-away PostgreSQL server on a free port (trust auth, no fsync), removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL server binaries not found in {PG_BIN} (set PG_BIN)")
    datadir = Path(tempfile.mkdtemp(prefix="handoff-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres user
        owner = pwd.getpwnam("postgres")
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PrivatePostgres(port=free_port(), datadir=datadir, as_user=as_user)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def fault_queue() -> str:
    """A queue of the test's own: only the worker processes it starts consume it."""
    return f"handoff-fault-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def shared_broker_url() -> str:
    return settings.CELERY_BROKER_URL
