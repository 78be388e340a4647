"""`make run` on the embedded default (SQLite + filesystem transport) really runs the demo."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completed_journeys(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM journeys_journey WHERE status = 'completed'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not migrated yet, or busy


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_make_run_starts_the_demo_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    db = tmp_path / "handoff.sqlite3"
    env = {
        **os.environ,
        "PORT": str(port),
        "SIM_RATE": "30",
        "HANDOFF_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{db}",
        "CELERY_BROKER_URL": "filesystem://",
        "C_FORCE_ROOT": "1",
    }
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        while completed_journeys(db) == 0:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no journey completed: " + (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=10) as response:
            assert response.status == 200
            assert b"Log in to Handoff" in response.read()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        stopping = time.monotonic()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("make run did not stop on Ctrl-C")
    deadline = time.monotonic() + 30
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not group_alive(proc.pid), "a process started by make run outlived Ctrl-C"
    stopped_in = time.monotonic() - stopping
    output = (tmp_path / "run.log").read_text()
    # It starts and stops quietly: within honcho's 5 s grace, no forced kill, no warnings, no error.
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop"
    for noise in (
        "No directory at",
        "No hostname was supplied",
        "SIGKILL",
        "Error 130",
        "Do not use it in a production",
    ):
        assert noise not in output, f"{noise!r} in: " + output[-3000:]
    assert proc.returncode in (0, -signal.SIGINT), proc.returncode
    assert output.rstrip().endswith("Handoff stopped.")
    assert f"http://127.0.0.1:{port}/" in output
    assert "supervisor" in output and "compliance" in output and "admin" in output
