"""verify_audit in several worker processes: the same result as in one, and one process where
workers cannot help or cannot run (inside a transaction, in a daemonic process such as a Celery
prefork child)."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time

import billiard
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction

from review.audit.chain import audit_append, checkpoint_create
from review.audit.verify import VerifyIncomplete, _chain_counts, _ranges, audit_verify
from review.models import AuditRecord
from tests.conftest import as_database_superuser

CHAINS = [f"journey:{n}" for n in range(101, 109)]
PER_CHAIN = 12
WORKERS = 3


def _append_trail() -> None:
    for turn in range(PER_CHAIN):
        for chain in CHAINS:
            with transaction.atomic():
                audit_append(
                    chain=chain,
                    kind="note",
                    summary=f"{chain} turn {turn}",
                    payload={"amount": f"{turn}.00", "turn": turn, "card": "4000123412341234"},
                )


def _tamper(sql: str, params: list) -> None:
    """Edit the trail as a database superuser can: with the append-only trigger switched off."""
    with as_database_superuser() as cursor:
        cursor.execute("ALTER TABLE review_auditrecord DISABLE TRIGGER review_auditrecord_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE review_auditrecord ENABLE TRIGGER review_auditrecord_append_only")


def _record(chain: str, seq: int) -> AuditRecord:
    return AuditRecord.objects.get(chain=chain, seq=seq)


def _in_workers(**kwargs):
    return audit_verify(use_sink=False, processes=WORKERS, parallel_from=1, **kwargs)


def _alone(**kwargs):
    return audit_verify(use_sink=False, processes=1, **kwargs)


def _same(parallel, single) -> None:
    assert (parallel.records, parallel.chains, parallel.checkpoints) == (
        single.records,
        single.chains,
        single.checkpoints,
    )
    assert parallel.breaks == single.breaks
    assert parallel.first_break == single.first_break
    assert parallel.summary() == single.summary()


@pytest.mark.django_db(transaction=True)
def test_workers_find_exactly_the_breaks_one_process_finds_in_every_chain():
    _append_trail()
    checkpoint_create()
    edited_payload, edited_header, removed, cut = CHAINS[0], CHAINS[3], CHAINS[5], CHAINS[7]
    # The tampered chains lie in different workers' ranges.
    ranges = _ranges(_chain_counts(), WORKERS)
    assert len(ranges) == WORKERS
    owners = {
        chain: next(
            i
            for i, (low, high) in enumerate(ranges)
            if (low is None or chain >= low) and (high is None or chain < high)
        )
        for chain in (edited_payload, edited_header, removed, cut)
    }
    assert len(set(owners.values())) == WORKERS

    intact = _in_workers()
    assert intact.ok and intact.processes == WORKERS, intact.mode
    _same(intact, _alone())

    _tamper(
        'UPDATE review_auditrecord SET payload = \'{"amount": "9999.00"}\' WHERE id = %s',
        [_record(edited_payload, 4).pk],
    )
    _tamper("UPDATE review_auditrecord SET summary = 'nothing to see' WHERE id = %s", [_record(edited_header, 7).pk])
    _tamper("DELETE FROM review_auditrecord WHERE id = %s", [_record(removed, 3).pk])
    # The tail after the checkpoint: the chain itself still links, only the signed head is gone.
    _tamper("DELETE FROM review_auditrecord WHERE chain = %s AND seq > %s", [cut, PER_CHAIN - 2])
    # A second edit further along an already broken chain is not reported again.
    _tamper("UPDATE review_auditrecord SET summary = 'again' WHERE id = %s", [_record(edited_header, 10).pk])

    parallel, single = _in_workers(), _alone()
    assert parallel.processes == WORKERS and single.processes == 1
    _same(parallel, single)
    found = {(b.chain, b.seq): b.reason for b in parallel.breaks}
    assert found == {
        (edited_payload, 4): "payload does not match its digest (edited)",
        (edited_header, 7): "content does not match its hash (edited)",
        (removed, 4): "sequence jumps from #2 to #4 (a record was removed)",
        (cut, PER_CHAIN): f"checkpointed head #{PER_CHAIN} is missing (records removed from the end)",
    }
    assert parallel.first_break.record_id == _record(edited_payload, 4).pk
    assert parallel.records == len(CHAINS) * PER_CHAIN - 3


@pytest.mark.django_db(transaction=True)
def test_workers_keep_the_progress_moving_up_to_the_total():
    _append_trail()
    seen: list[tuple[int, int]] = []
    result = _in_workers(progress=lambda done, total: seen.append((done, total)), every=1)
    total = len(CHAINS) * PER_CHAIN
    assert result.ok and result.processes == WORKERS
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert len(seen) >= WORKERS  # one report per page a worker finished, at least
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


@pytest.mark.django_db(transaction=True)
def test_a_caller_running_other_threads_spawns_its_workers_with_the_same_result():
    _append_trail()
    _tamper("UPDATE review_auditrecord SET summary = 'forged' WHERE id = %s", [_record(CHAINS[2], 5).pk])
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(30,))
    other.start()
    try:
        parallel = _in_workers()
    finally:
        stop.set()
        other.join()
    assert parallel.mode == f"{WORKERS} processes (spawn)"
    _same(parallel, _alone())
    assert parallel.first_break.record_id == _record(CHAINS[2], 5).pk


def test_inside_a_transaction_the_workers_could_not_see_the_rows_so_one_process_walks_them(db):
    _append_trail()  # uncommitted: the test's transaction is rolled back afterwards
    result = _in_workers()
    assert result.ok and result.records == len(CHAINS) * PER_CHAIN
    assert result.mode == "1 process (inside a transaction)"


@pytest.mark.django_db(transaction=True)
def test_a_small_trail_is_walked_in_one_process():
    _append_trail()
    result = audit_verify(use_sink=False, processes=WORKERS, parallel_from=len(CHAINS) * PER_CHAIN + 1)
    # (a caller running other threads would spawn its workers, from five times as many records)
    assert result.ok and result.mode.startswith("1 process (fewer than ")


def _verify_and_tell(answers) -> None:
    # As Celery's prefork child does first: forget any database connection inherited from the
    # parent without closing it (closing would end the parent's session), then work on its own.
    for inherited in connections.all(initialized_only=True):
        inherited.connection = None
    try:
        result = _in_workers()
        answers.put((result.ok, result.records, result.mode))
    finally:
        connections.close_all()


# A prefork pool forks its children; under pytest-xdist this process also runs execnet's thread.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("library", [billiard, multiprocessing], ids=["billiard (Celery prefork child)", "stdlib"])
def test_a_daemonic_caller_walks_the_chains_itself(library):
    """A Celery prefork pool runs tasks in daemonic billiard children, which may not start
    processes of their own; the verification task must still run there."""
    _append_trail()
    connections.close_all()  # the child must not share this process's database socket
    context = library.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_verify_and_tell, args=(answers,), daemon=True)
    child.start()
    try:
        ok, records, mode = answers.get(timeout=60)
    finally:
        child.join(10)
    assert (ok, records) == (True, len(CHAINS) * PER_CHAIN)
    assert mode.startswith("1 process (daemonic process")
    assert child.exitcode == 0


@pytest.mark.parametrize("asked", ["-1", "33", "100000"])
def test_the_command_refuses_a_number_of_processes_out_of_range(db, asked):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--processes must be from 0"):
        call_command("verify_audit", "--no-sink", "--processes", asked)


@pytest.mark.django_db(transaction=True)
def test_a_huge_number_of_processes_asked_starts_at_most_max_processes(monkeypatch):
    from review.audit import verify

    _append_trail()
    monkeypatch.setattr(verify, "MAX_PROCESSES", 2)
    result = audit_verify(use_sink=False, processes=10_000, parallel_from=1)
    assert result.ok and result.processes == 2 and result.records == len(CHAINS) * PER_CHAIN


class _OneWorkerDies:
    """``multiprocessing.get_context`` whose process named ``verify_audit-1`` exits at once with
    code 9 (SIGKILL's number) without reporting anything; the others walk as usual. It works
    whichever way the workers start (fork, or spawn when the test process runs other threads)."""

    dying = "verify_audit-1"

    def __init__(self, real):
        self.real = real

    def __call__(self, method=None):
        context = self.real(method)

        class Context:
            Queue = staticmethod(context.Queue)

            @staticmethod
            def Process(*, target, args, name, daemon):
                if name == _OneWorkerDies.dying:
                    target, args = os._exit, (9,)
                return context.Process(target=target, args=args, name=name, daemon=daemon)

        return Context()


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_dies_mid_walk_makes_the_run_fail_loudly_not_pass(monkeypatch, settings):
    settings.AUDIT_VERIFY_PARALLEL_FROM = 1
    _append_trail()
    monkeypatch.setattr(multiprocessing, "get_context", _OneWorkerDies(multiprocessing.get_context))
    started = time.monotonic()
    with pytest.raises(VerifyIncomplete, match=r"verify_audit-1 exited \(9\) without a result"):
        _in_workers()
    assert time.monotonic() - started < 30  # found out, not waited on forever
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("verify_audit-")]
    with pytest.raises(CommandError, match=r"did not finish .* nothing is concluded about the trail"):
        call_command("verify_audit", "--no-sink", f"--processes={WORKERS}")
    monkeypatch.undo()
    assert _alone().ok  # the trail itself was never in question
