"""PostgreSQL restarts while the simulator, a worker and the web server run.

Everything here runs against a private PostgreSQL server (the suite's shared one is never
touched): while it is down the console answers 503 with a plain page that says so (never a stack
trace), and once it is back the console, the worker and the simulator carry on by themselves.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from .conftest import free_port, port_open, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.timeout(300)]


class Browser:
    """A cookie-keeping HTTP client: enough to log in and poll like a supervisor's browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers={"Accept": "text/html", **(headers or {})})
        try:
            with self.opener.open(req, timeout=15) as resp:
                return resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)

    def login_form(self) -> dict[str, str]:
        status, page, _ = self.request("/login/")
        assert status == 200, page[:500]
        return {"csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)}

    def login(self, username: str) -> None:
        status, page, _ = self.request("/login/", {**self.login_form(), "username": username, "password": "demo"})
        assert status == 200 and "Log out" in page, page[:500]


def assert_clear_503(status: int, body: str, headers: dict) -> None:
    assert status == 503, f"expected 503 while the database is down, got {status}: {body[:300]}"
    assert headers.get("Retry-After")
    for leak in ("Traceback", "OperationalError", "psycopg", 'File "', "connection refused"):
        assert leak.lower() not in body.lower(), f"the 503 answer leaks {leak!r}: {body[:500]}"


def test_console_answers_503_while_postgres_restarts_and_recovers_by_itself(
    processes, private_postgres, private_redis, fault_queue
):
    private_postgres.execute("CREATE DATABASE handoff")
    processes.env.update(
        {
            "DATABASE_URL": private_postgres.url("handoff"),
            "CELERY_BROKER_URL": private_redis.url,
            "CELERY_QUEUE": fault_queue,
            "DEBUG": "false",
        }
    )
    processes.manage("migrate", "--no-input", "-v", "0", timeout=150)
    processes.manage("seed_demo", "--customers", "12")

    def journeys() -> int:
        return private_postgres.execute("SELECT count(*) FROM journeys_journey", dbname="handoff")[0][0]

    def turns() -> int:
        return private_postgres.execute("SELECT coalesce(sum(turn_seq), 0) FROM journeys_journey", dbname="handoff")[0][
            0
        ]

    port = free_port()
    processes.spawn(
        "web", "-m", "gunicorn", "console.wsgi", "-b", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"
    )
    processes.worker(fault_queue, concurrency=1)
    processes.spawn("simulator", "manage.py", "simulate_customers", "--rate", "120", "--seed", "3")
    wait_until(lambda: port_open(port), 30, "the web server did not start:\n" + processes.log_tail())

    browser = Browser(f"http://127.0.0.1:{port}")
    browser.login("supervisor")
    status, page, _ = browser.request("/board/")
    assert status == 200 and "Live board" in page
    wait_until(lambda: journeys() >= 2 and turns() >= 2, 60, "the simulator and worker never got going")
    stranger = Browser(browser.base)
    form = stranger.login_form()

    private_postgres.stop()
    try:
        assert_clear_503(*browser.request("/board/"))
        page_503 = browser.request("/board/")[1]
        assert "briefly unavailable" in page_503 and 'http-equiv="refresh"' in page_503
        # The board's own poll, a form post and the health check are refused the same way.
        status, body, headers = browser.request("/board/", headers={"HX-Request": "true"})
        assert_clear_503(status, body, headers)
        assert json.loads(body)["ok"] is False
        assert_clear_503(*stranger.request("/login/", {**form, "username": "compliance", "password": "demo"}))
        status, body, headers = browser.request("/healthz", headers={"Accept": "application/json"})
        assert_clear_503(status, body, headers)
        time.sleep(2.0)  # the worker and the simulator meet the outage too
    finally:
        private_postgres.start()

    before = journeys(), turns()
    # Recovers by itself: same session cookie, no restart of any process.
    wait_until(lambda: browser.request("/board/")[0] == 200, 30, "the console did not recover")
    wait_until(lambda: journeys() > before[0], 60, "the simulator did not recover:\n" + processes.log_tail())
    wait_until(lambda: turns() > before[1], 60, "the worker did not recover:\n" + processes.log_tail())
    for proc in processes.started:
        assert proc.poll() is None, "a process died during the outage:\n" + processes.log_tail()
