"""Shared fixtures: the demo bank's named actors, a real Celery worker, a real browser.

The suite runs against PostgreSQL (``DATABASE_URL``) and a real broker (``CELERY_BROKER_URL``);
``make test`` points both at the local servers. Each test session publishes to its own queue,
so a stray message from an earlier run never reaches this run's worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from console.celery import app as celery_app
from journeys.models import Agent, Journey

TEST_QUEUE = f"handoff-test-{uuid.uuid4().hex[:8]}"


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine and not os.environ.get("HANDOFF_ALLOW_SQLITE_TESTS"):
        raise pytest.UsageError(
            "The suite runs against PostgreSQL: set DATABASE_URL (make test does) — "
            "e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/handoff"
        )
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.HANDOFF.update(
        {
            "STEP_LEASE_SECONDS": 4,
            "RETRY_BASE_SECONDS": 0.2,
            "SWEEP_GRACE_SECONDS": 1.0,
            "MAX_STEP_ATTEMPTS": 3,
        }
    )
    celery_app.conf.task_default_queue = TEST_QUEUE
    settings.CELERY_TASK_DEFAULT_QUEUE = TEST_QUEUE


# --- demo data and named actors -------------------------------------------------------------


@pytest.fixture
def demo(db) -> None:
    """The demo bank: definitions, action types, teams, grants, users, agent, 12 customers.

    A test inside a transaction that is rolled back afterwards gets the rows ``seed_demo`` wrote,
    copied back in from a snapshot (``_DemoSnapshot``); a transactional test, whose writes are
    committed, runs ``seed_demo`` itself."""
    from django.db import connection

    rolled_back = connection.in_atomic_block
    if not (rolled_back and (_DEMO_SNAPSHOT.restore() or (_DEMO_SNAPSHOT.take() and _DEMO_SNAPSHOT.restore()))):
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", customers=12, stdout=quiet)
    # Tests want a predictable agent: no random errors, no thinking time.
    Agent.objects.filter(name="Scripted agent").update(config={})


class _DemoSnapshot:
    """The rows ``seed_demo`` leaves in the tables it writes, copied out once and back in (COPY)
    for each later test: the same rows, ids included, for a fraction of the seed's queries.

    It is taken by running ``seed_demo`` in a savepoint that is then rolled back, and it is used
    only while every one of those tables holds what it held then (the same count and highest id):
    after a transactional test's flush, which renumbers content types and permissions, or when
    a fixture wrote to these tables first, it is taken again. A minute at most, so the customers'
    timestamps (relative to now) stay as recent as a fresh seed makes them."""

    MAX_AGE_SECONDS = 60.0

    def __init__(self) -> None:
        self.tables: list[str] = []
        self.before: list[tuple] = []
        self.rows: dict[str, bytes] = {}
        self.sequences: list[tuple[str, str]] = []
        self.taken = -self.MAX_AGE_SECONDS

    @staticmethod
    def _writes(cursor: Any) -> dict[str, tuple[int, int, int]]:
        cursor.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables")
        return {name: counts for name, *counts in cursor.fetchall()}

    # Rows the seed refers to without writing them: a flush renumbers them.
    REFERENCED = ("django_content_type", "auth_permission")
    # Rows written by database triggers when the seed's rows are (copying them in writes these).
    BY_TRIGGERS = ("review_rulesversion",)

    @classmethod
    def _state(cls, cursor: Any, tables: list[str]) -> list[tuple]:
        tables = [*tables, *cls.REFERENCED]
        cursor.execute(" UNION ALL ".join(f'(SELECT count(*), max(id) FROM "{t}")' for t in tables))
        return cursor.fetchall()

    def take(self) -> bool:
        from django.db import connection, transaction

        self.tables = []
        with connection.cursor() as cursor:
            before = self._writes(cursor)
            savepoint = transaction.savepoint_create()
            with open(os.devnull, "w") as quiet:
                call_command("seed_demo", customers=12, stdout=quiet)
            written = self._writes(cursor).items()
            tables = sorted(t for t, n in written if n != before.get(t, (0, 0, 0)) and t not in self.BY_TRIGGERS)
            cursor.execute(
                "SELECT table_name, pg_get_serial_sequence(format('%%I', table_name), 'id') "
                "FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'id' "
                "AND table_name = ANY(%s)",
                [tables],
            )
            sequences = cursor.fetchall()
            if not tables or len(sequences) != len(tables):  # a table without an id: seed each time
                transaction.savepoint_rollback(savepoint)
                return False
            raw = connection.connection.cursor()
            rows = {}
            for table in tables:
                with raw.copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy:
                    rows[table] = b"".join(bytes(block) for block in copy)
            transaction.savepoint_rollback(savepoint)
            self.before = self._state(cursor, tables)
        self.tables, self.rows, self.taken = tables, rows, time.monotonic()
        self.sequences = [(t, seq) for t, seq in sequences if seq]
        return True

    def restore(self) -> bool:
        from django.db import connection

        if not self.tables or time.monotonic() - self.taken > self.MAX_AGE_SECONDS:
            return False
        with connection.cursor() as cursor:
            if self._state(cursor, self.tables) != self.before:
                return False
            for table, (count, _) in zip(self.tables, self.before, strict=False):
                if count:
                    cursor.execute(f'DELETE FROM "{table}"')
            raw = connection.connection.cursor()
            for table in self.tables:
                with raw.copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy:
                    copy.write(self.rows[table])
        # The next id past the copied rows (the seed that took the snapshot moved it there already;
        # this keeps it so). Setting a sequence is the owner's right, not the application role's.
        with as_database_superuser() as cursor:
            for table, sequence in self.sequences:
                highest = f'GREATEST((SELECT max(id) FROM "{table}"), (SELECT last_value FROM {sequence}))'
                cursor.execute(f"SELECT setval(%s, {highest})", [sequence])
        return True


_DEMO_SNAPSHOT = _DemoSnapshot()


def _user(username: str):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def supervisor(demo):
    """Cards team: card dispute and lost card."""
    return _user("supervisor")


@pytest.fixture
def supervisor2(demo):
    """Servicing team: fee refund and address change."""
    return _user("supervisor2")


@pytest.fixture
def compliance(demo):
    return _user("compliance")


@pytest.fixture
def admin_user(demo):
    return _user("admin")


@pytest.fixture
def admin2(demo):
    """The second admin: the checker of governance changes the first one makes."""
    return _user("admin2")


@pytest.fixture
def outsider(demo):
    """An active user in no team: sees nothing."""
    return get_user_model().objects.create_user("outsider", password="demo")


@pytest.fixture
def agent(demo) -> Agent:
    return Agent.objects.get(name="Scripted agent")


# --- a real Celery worker -------------------------------------------------------------------


@pytest.fixture(scope="session")
def celery_worker_session(django_db_blocker) -> Iterator[Any]:
    """One in-process Celery worker for the session, consuming this session's queue."""
    from celery.contrib.testing.worker import start_worker

    # A real worker imports CELERY_IMPORTS and autodiscovers tasks at start-up; do the same so a
    # test run alone knows every task, not only those its modules happened to import.
    celery_app.loader.import_default_modules()
    with (
        django_db_blocker.unblock(),
        start_worker(
            celery_app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=[TEST_QUEUE],
            loglevel="WARNING",
            shutdown_timeout=10,
        ) as worker,
    ):
        _WORKER["started"] = True
        yield worker


@pytest.fixture
def celery_worker(celery_worker_session, transactional_db):
    """A running worker; the test's data must be committed for it to see (transactional_db).

    Afterwards the worker is brought to rest before the database is flushed: a turn still
    holding row locks while TRUNCATE takes its table locks would deadlock the flush.
    """
    yield celery_worker_session
    quiesce_worker()


_WORKER = {"started": False}


# Where a transactional test that did not ask for the worker sends its agent turns: a queue no
# worker consumes. Its journeys are committed, so without this the session's worker — once an
# earlier test in the same process started it — would run their turns beside the test body, and
# the test's outcome would hang on the order the tests ran in.
PARKED_QUEUE = f"{TEST_QUEUE}-parked"


@pytest.fixture(autouse=True)
def _worker_at_rest_before_the_flush(request) -> Iterator[None]:
    """A transactional test that did not ask for the worker still commits journeys: their turns
    go to ``PARKED_QUEUE``, where no worker runs them (a test that starts worker processes of its
    own points the queue elsewhere itself). And the session's worker is brought to rest before
    the flush, for the reason ``celery_worker`` gives.

    Fixtures are torn down in the reverse order of their set-up, and an autouse fixture is set
    up first: so it asks for the database fixture itself, which is then set up before it and
    flushed after it has brought the worker to rest."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or "transactional_db" in request.fixturenames
    parked = transactional and "celery_worker" not in request.fixturenames
    if transactional:
        request.getfixturevalue("transactional_db")
    if parked:
        celery_app.conf.task_default_queue = PARKED_QUEUE
    yield
    if parked:
        celery_app.conf.task_default_queue = TEST_QUEUE
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(PARKED_QUEUE)
    if _WORKER["started"] and transactional:
        quiesce_worker()


def quiesce_worker(timeout: float = 30.0) -> None:
    """Stop every journey from scheduling more turns, drop queued ones, wait until idle."""
    from celery.worker import state

    # Test teardown, not a transition: the database constraints still hold for the result.
    Journey.objects.filter(status__in=Journey.LIVE_STATUSES).update(
        status=Journey.Status.FAILED,
        waiting_on="",
        controller_user=None,
        lease_token="",
        lease_until=None,
        next_run_at=None,
    )
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(TEST_QUEUE)
        if state.active_requests:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.3:
            return
        time.sleep(0.05)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, message: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with ``message`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message or f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def within_one_minute() -> None:
    """Start the test well inside a wall-clock minute. The board's, the desk's and the exception
    workbench's change markers also move each minute (waiting times age), so a test that loads a
    page and then expects its unchanged poll to answer 204 must not straddle a minute."""
    from django.utils import timezone

    now = timezone.now()
    second = now.second + now.microsecond / 1e6
    if second > 50:
        time.sleep(60.1 - second)


def drive_to_end(journey_id: int, timeout: float = 60.0) -> Journey:
    """Play a cooperative customer until the journey leaves the agent's hands."""
    from demo.simulator import Simulator
    from journeys.services import JourneyError, journey_customer_message

    sim = Simulator(seed=1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journey = Journey.objects.get(pk=journey_id)
        if journey.status != Journey.Status.RUNNING:
            return journey
        if journey.waiting_on == Journey.WaitingOn.CUSTOMER:
            text, data, intent = sim.answer(journey, "cooperative")
            if journey.current_step == "verify_strong" and "code" in data:
                from demo.models import CoreVerificationCode

                data["code"] = CoreVerificationCode.objects.filter(customer__ref=journey.customer_ref).first().code
            with contextlib.suppress(JourneyError):  # the journey moved on meanwhile
                journey_customer_message(journey_id=journey_id, text=text, data=data, intent=intent)
        time.sleep(0.1)
    pytest.fail(f"J-{journey_id} still running after {timeout} s")


# --- a real browser -------------------------------------------------------------------------


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate:
            return candidate
    pytest.fail("Chromium is not installed: `apt-get install -y chromium` (or set CHROMIUM_PATH).")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares the thread
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def login_page(browser, live_server) -> Callable[[str], Any]:
    """``login_page("supervisor")`` returns a Playwright page logged in as that demo user."""
    pages = []

    def login(username: str, password: str = "demo") -> Any:
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        pages.append(context)
        return page

    yield login
    for context in pages:
        context.close()


# --- the audit trail's test-only flush escape hatch -----------------------------------------


def _allow_audit_truncate(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Transactional tests are flushed with TRUNCATE, which the audit tables refuse. The
    trigger lets a *superuser* session with ``handoff.allow_audit_truncate`` on through; the
    suite's database role is a superuser, production's application role is not.

    With ``HANDOFF_TEST_DB_ROLE=app`` (``make test-app-role``) every connection then switches to
    the restricted application role (``manage.py database_roles``) for the test itself; only the
    flush between tests switches back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET handoff.allow_audit_truncate = on")
            if _APP_ROLE["name"]:
                cursor.execute(f'SET ROLE "{_APP_ROLE["name"]}"')


from django.db.backends.signals import connection_created  # noqa: E402

connection_created.connect(_allow_audit_truncate, dispatch_uid="tests.allow_audit_truncate")

# --- the restricted application role ----------------------------------------------------------

_APP_ROLE: dict[str, str] = {"name": ""}
RUN_AS_APP_ROLE = os.environ.get("HANDOFF_TEST_DB_ROLE") == "app"


def app_role_name() -> str:
    """Roles live in the whole cluster: name it after this run's test database."""
    return f"{settings.DATABASES['default']['NAME']}_app"


@pytest.fixture(scope="session", autouse=True)
def _restricted_app_role(request, django_db_blocker) -> Iterator[None]:
    if not RUN_AS_APP_ROLE:
        yield
        return
    request.getfixturevalue("django_db_setup")
    from django.db import connections
    from django.db.backends.postgresql.operations import DatabaseOperations

    with django_db_blocker.unblock():
        call_command("database_roles", create=True, app_role=app_role_name(), owner_role="postgres", verbosity=0)
    connections.close_all()
    _APP_ROLE["name"] = app_role_name()
    original = DatabaseOperations.execute_sql_flush

    def flush_as_owner(self: Any, sql_list: Any) -> None:
        # The flush between transactional tests is the harness, not the application.
        with self.connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
        try:
            original(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute(f'SET ROLE "{_APP_ROLE["name"]}"')

    DatabaseOperations.execute_sql_flush = flush_as_owner
    yield
    DatabaseOperations.execute_sql_flush = original
    _APP_ROLE["name"] = ""


@contextlib.contextmanager
def as_database_superuser() -> Iterator[Any]:
    """A cursor acting as the database superuser (an attacker with full database rights), also
    when the test otherwise runs as the restricted application role."""
    from django.db import connection
    from psycopg.pq import TransactionStatus

    with connection.cursor() as cursor:
        if _APP_ROLE["name"]:
            cursor.execute("RESET ROLE")
        try:
            yield cursor
        finally:
            # In a failed transaction the rollback itself undoes the RESET ROLE.
            if _APP_ROLE["name"] and cursor.connection.info.transaction_status != TransactionStatus.INERROR:
                cursor.execute(f'SET ROLE "{_APP_ROLE["name"]}"')


@pytest.fixture(autouse=True)
def _checkpoint_sink(settings, tmp_path) -> None:
    """Each test gets its own outside sink and archive folder, as a fresh installation would."""
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoint-sink")
    settings.AUDIT_ARCHIVE_DIR = str(tmp_path / "audit-archive")
