"""Verifying the audit trail: every chain link by link, and every signed checkpoint.

A break is any of: a record whose content no longer matches its hash, a payload that no longer
matches its digest, a link that does not point at the record before it, a missing or inserted
sequence number, a checkpoint whose hash, link or signature is wrong, or a checkpointed chain
head that is no longer in the trail (a deleted tail or a re-hashed chain). With a copy of the
checkpoints kept outside the database, a checkpoint rewritten in the database is caught too.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from typing import Any

from django.db import connection, connections

from review.models import AuditArchive, AuditCheckpoint, AuditRecord

from .chain import audit_key, audit_key_id, checkpoint_payload, timestamp
from .chains import FIELDS, PAGE, Break, Walked, pages_postgresql, walk, walk_range
from .offline import GENESIS, checkpoint_hash, checkpoint_signature

__all__ = ["Break", "VerifyResult", "audit_verify"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class VerifyIncomplete(RuntimeError):
    """A worker process walking part of the chains died or failed: the run concluded nothing
    about the trail (neither intact nor broken)."""


@dataclass
class VerifyResult:
    records: int = 0
    chains: int = 0
    checkpoints: int = 0
    breaks: list[Break] = field(default_factory=list)
    sink_checked: bool = False
    # How the records were walked: how many processes, and how (or why in this one alone).
    processes: int = 1
    mode: str = ""

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        """The earliest broken record (lowest id); chain-level breaks come after record ones."""
        with_ids = [b for b in self.breaks if b.record_id is not None]
        if with_ids:
            return min(with_ids, key=lambda b: b.record_id)
        return self.breaks[0] if self.breaks else None

    def summary(self) -> str:
        if self.ok:
            return (
                f"Audit trail intact: {self.records} records in {self.chains} chains, "
                f"{self.checkpoints} signed checkpoints verified."
            )
        return (
            f"Audit trail BROKEN: {len(self.breaks)} break(s); first broken {self.first_break}. "
            f"Checked {self.records} records in {self.chains} chains "
            f"and {self.checkpoints} checkpoints."
        )


def _check_checkpoints(result: VerifyResult, external: list[dict[str, Any]] | None) -> dict[tuple[str, int], str]:
    """Check the checkpoint chain and signatures; return the heads the records must still match."""
    key, key_id = audit_key(), audit_key_id()
    expected: dict[tuple[str, int], str] = {}
    previous_hash = GENESIS
    stored: dict[int, dict[str, Any]] = {}
    for checkpoint in AuditCheckpoint.objects.order_by("seq").iterator(chunk_size=200):
        result.checkpoints += 1
        data = checkpoint_payload(checkpoint)
        stored[checkpoint.seq] = data
        label = f"checkpoint {checkpoint.seq}"
        if checkpoint.prev_hash != previous_hash:
            result.breaks.append(Break(None, label, None, "does not link to the checkpoint before it"))
        if checkpoint_hash(data) != checkpoint.hash:
            result.breaks.append(Break(None, label, None, "content does not match its hash"))
        if checkpoint.key_id == key_id and checkpoint_signature(key, checkpoint.hash) != checkpoint.signature:
            result.breaks.append(Break(None, label, None, "signature is not the server's"))
        elif checkpoint.key_id != key_id:
            result.breaks.append(Break(None, label, None, f"signed with key {checkpoint.key_id}, not the current key"))
        previous_hash = checkpoint.hash
        for chain, (seq, digest) in checkpoint.heads.items():
            expected[(chain, seq)] = digest
    for outside in external or []:
        label = f"checkpoint {outside.get('seq')}"
        mine = stored.get(outside.get("seq"))
        # The outside copy's heads must be in the trail whatever happened to the database's copy.
        for chain, (seq, digest) in (outside.get("heads") or {}).items():
            expected[(chain, seq)] = digest
        if mine is None:
            result.breaks.append(Break(None, label, None, "in the outside copy but missing from the database"))
            continue
        for name in ("hash", "heads", "prev_hash", "signature"):
            if mine[name] != outside.get(name):
                result.breaks.append(Break(None, label, None, f"{name} differs from the outside copy"))
                break
        if outside.get("key_id") == key_id and checkpoint_signature(key, outside.get("hash", "")) != outside.get(
            "signature"
        ):
            result.breaks.append(Break(None, label, None, "the outside copy's signature is not the server's"))
    return expected


def _check_sink_is_current(result: VerifyResult, outside: list[dict[str, Any]]) -> None:
    """A checkpoint that should long have reached the outside sink but has not: the sink is
    failing (or was cut), and the window an attacker could use is open."""
    from django.conf import settings
    from django.utils import timezone

    newest_outside = max((c.get("seq") or 0 for c in outside), default=0)
    grace = timedelta(seconds=max(5 * settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["schedule"], 300))
    stale = AuditCheckpoint.objects.filter(seq__gt=newest_outside, at__lt=timezone.now() - grace).order_by("seq")
    first = stale.first()
    if first is not None:
        result.breaks.append(
            Break(None, f"checkpoint {first.seq}", None, "never reached the outside sink (is the sink writable?)")
        )


def _check_archives(result: VerifyResult) -> dict[str, list[Any]]:
    """Check the signed "archived up to" rows; return each chain's last archived [seq, hash]."""
    from .archive import archive_payload, archived_heads

    key, key_id = audit_key(), audit_key_id()
    previous_hash = GENESIS
    for archive in AuditArchive.objects.order_by("seq").iterator():
        label = f"archive {archive.seq}"
        if archive.prev_hash != previous_hash:
            result.breaks.append(Break(None, label, None, "does not link to the archive before it"))
        if checkpoint_hash(archive_payload(archive)) != archive.hash:
            result.breaks.append(Break(None, label, None, "content does not match its hash"))
        if archive.key_id != key_id or checkpoint_signature(key, archive.hash) != archive.signature:
            result.breaks.append(Break(None, label, None, "signature is not the server's"))
        previous_hash = archive.hash
    return archived_heads()


def _pages_orm() -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``chains.pages_postgresql`` through the ORM, for the embedded SQLite demo."""
    at = FIELDS.index("at")
    page: list[tuple[Any, ...]] = []
    for row in AuditRecord.objects.order_by("chain", "seq").values_list(*FIELDS).iterator(chunk_size=2000):
        page.append((row[0], row[1], json.dumps(row[2]), *row[3:at], timestamp(row[at]), *row[at + 1 :]))
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _alone_because(processes: int) -> str | None:
    """Why the records must be walked in this process, or None when workers may be started."""
    if processes < 2:
        return "one process asked"
    if connection.vendor != "postgresql":
        return connection.vendor
    if connection.in_atomic_block:
        # Other connections cannot see what this transaction has not committed.
        return "inside a transaction"
    # The standard library refuses to start processes from a daemonic one, and a Celery prefork
    # child is one (billiard marks it so for both); billiard itself would start them, but the
    # pool may kill the child at a time limit and leave its workers behind.
    if multiprocessing.current_process().daemon:
        return "daemonic process"
    billiard = sys.modules.get("billiard.process")
    if billiard is not None and billiard.current_process().daemon:
        return "daemonic process (Celery prefork child)"
    return None


def _chain_counts() -> list[tuple[str, int]]:
    """Every chain and its number of records, in chain order (one pass over the index)."""
    table = AuditRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT chain, count(*) FROM {table} GROUP BY chain ORDER BY chain")
        return cursor.fetchall()


def _ranges(counts: list[tuple[str, int]], parts: int) -> list[tuple[str | None, str | None]]:
    """Up to ``parts`` contiguous ranges ``[low, high)`` of chains (None: unbounded), holding
    about as many records each; whole chains only. The first and last are open, so a chain
    created meanwhile still falls into one."""
    total = sum(count for _, count in counts)
    starts: list[str] = []
    before, part = 0, 1
    for chain, count in counts:
        if part < parts and before and before >= total * part / parts:
            starts.append(chain)
            while part < parts and before >= total * part / parts:
                part += 1
        before += count
    return list(pairwise([None, *starts, None]))


def _threads() -> int:
    """Threads of this process, also those not started through ``threading`` (the OS's count)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


# The most worker processes one verification starts: each holds a database connection, and past
# the number of CPUs they only wait for each other.
MAX_PROCESSES = 32

# A spawned worker starts a new interpreter (about a quarter of a second here, against a few
# milliseconds for a fork): spawning pays off only on a trail this many times larger.
SPAWN_COSTLIER = 5


def _start_method() -> str:
    """fork when this process runs one thread (cheap: nothing to import again); spawn when other
    threads run (a fork could copy a lock another thread holds), e.g. in a threads-pool worker."""
    if _threads() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _walk_in_processes(
    ranges: list[tuple[str | None, str | None]],
    method: str,
    *,
    archived: dict[str, list[Any]],
    expected_heads: dict[tuple[str, int], str],
    on_page: Callable[[int], None],
) -> Walked:
    """Walk each range of chains in a worker process of its own, then merge in chain order."""
    conninfo = {
        key: value
        for key, value in connection.get_connection_params().items()
        if key not in ("cursor_factory", "context", "prepare_threshold")
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user")
        current_user, session_user = cursor.fetchone()
    role = current_user if current_user != session_user else None
    if method == "fork":
        # The children must not inherit (and later share) this process's open database sockets.
        connections.close_all()
    context = multiprocessing.get_context(method)
    messages = context.Queue()
    table = AuditRecord._meta.db_table
    workers = [
        context.Process(
            target=walk_range,
            args=(index, conninfo, role, table, low, high, archived, expected_heads, messages),
            name=f"verify_audit-{index}",
            daemon=True,
        )
        for index, (low, high) in enumerate(ranges)
    ]
    done: dict[int, Walked] = {}
    checked = [0] * len(workers)
    try:
        for worker in workers:
            worker.start()
        silent = 0
        while len(done) < len(workers):
            try:
                kind, index, value = messages.get(timeout=1)
            except queue.Empty:
                gone = [w for i, w in enumerate(workers) if i not in done and w.exitcode is not None]
                silent = silent + 1 if gone else 0
                if silent > 1:  # exited, and nothing more arrived since: it died without a result
                    raise VerifyIncomplete(f"{gone[0].name} exited ({gone[0].exitcode}) without a result") from None
                continue
            if kind == "page":
                checked[index] = value
                on_page(sum(checked))
            elif kind == "done":
                done[index] = value
            else:
                raise VerifyIncomplete(f"{workers[index].name} failed: {value}")
    finally:
        for worker in workers:
            if worker.pid is None:  # never started
                continue
            if len(done) == len(workers):
                worker.join(10)  # it has sent its result and is exiting
            if worker.is_alive():
                worker.terminate()
            worker.join()
        messages.close()
    merged = Walked()
    for index in range(len(workers)):
        part = done[index]
        merged.records += part.records
        merged.chains += part.chains
        merged.breaks.extend(part.breaks)
        merged.seen_heads |= part.seen_heads
    return merged


def audit_verify(
    *,
    progress: Progress | None = None,
    external_checkpoints: list[dict[str, Any]] | None = None,
    use_sink: bool = True,
    every: int = 5000,
    processes: int | None = None,
    parallel_from: int | None = None,
) -> VerifyResult:
    """Verify everything; one pass over the records in (chain, seq) order. Unless given another
    copy, the checkpoints are compared with the outside sink's (``review.audit.sink``).

    On PostgreSQL, a trail of at least ``parallel_from`` records (``AUDIT_VERIFY_PARALLEL_FROM``)
    is walked by ``processes`` worker processes (``AUDIT_VERIFY_PROCESSES``; 0: one per CPU), each
    on a contiguous range of chains; the result is the same as walking it in one process. Workers
    are forked when this process runs one thread (its database connections are closed first) and
    spawned, from ``SPAWN_COSTLIER`` times as many records, when it runs others (a threads-pool
    Celery worker, a web server): a spawned worker imports the caller's main module again, which
    must therefore keep its work under ``if __name__ == "__main__"``. SQLite, a caller inside a
    transaction (the workers could not see what it has not committed) and a daemonic caller (a
    Celery prefork child may not start processes) walk the chains in this process."""
    from django.conf import settings

    result = VerifyResult()
    if external_checkpoints is None and use_sink:
        from .sink import sink_read

        external_checkpoints = sink_read()
        result.sink_checked = external_checkpoints is not None
        _check_sink_is_current(result, external_checkpoints or [])
    expected_heads = _check_checkpoints(result, external_checkpoints)
    archived = _check_archives(result)

    if processes is None:
        processes = settings.AUDIT_VERIFY_PROCESSES
    # However many are asked for (a setting, an option), never more than MAX_PROCESSES.
    processes = min(processes or _cpus(), MAX_PROCESSES)
    if parallel_from is None:
        parallel_from = settings.AUDIT_VERIFY_PARALLEL_FROM
    alone = _alone_because(processes)
    ranges: list[tuple[str | None, str | None]] = []
    if alone is None:
        counts = _chain_counts()
        total = sum(count for _, count in counts)
        method = _start_method()
        if method == "spawn":
            parallel_from *= SPAWN_COSTLIER
        if total < parallel_from:
            alone = f"fewer than {parallel_from:,} records"
        else:
            ranges = _ranges(counts, processes)
            if len(ranges) < 2:
                alone = "one chain"
    else:
        total = AuditRecord.objects.count()

    if progress:
        progress(0, total)
    next_progress = every

    def on_page(records: int) -> None:
        nonlocal next_progress
        if progress and records >= next_progress:
            progress(records, total)
            next_progress = (records // every + 1) * every

    if alone is None:
        walked = _walk_in_processes(ranges, method, archived=archived, expected_heads=expected_heads, on_page=on_page)
        result.processes, result.mode = len(ranges), f"{len(ranges)} processes ({method})"
    else:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                walked = walk(
                    pages_postgresql(cursor, AuditRecord._meta.db_table),
                    archived=archived,
                    expected_heads=expected_heads,
                    on_page=on_page,
                )
        else:
            walked = walk(_pages_orm(), archived=archived, expected_heads=expected_heads, on_page=on_page)
        result.processes, result.mode = 1, f"1 process ({alone})"

    result.records, result.chains = walked.records, walked.chains
    result.breaks.extend(walked.breaks)
    for head_chain, seq in sorted(set(expected_heads) - walked.seen_heads):
        if head_chain in archived and seq <= archived[head_chain][0]:
            continue  # moved to an archive file, which proves it (offline.py)
        result.breaks.append(
            Break(
                None,
                head_chain,
                seq,
                f"checkpointed head #{seq} is missing (records removed from the end)",
            )
        )
    if progress:
        progress(result.records, max(total, result.records))
    logger.info("verify_audit: %s records in %s chains, walked in %s", result.records, result.chains, result.mode)
    return result
