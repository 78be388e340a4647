"""Signed checkpoints leave the database by themselves: every new one is written to outside sinks.

Someone who can change the database could delete the newest records *and* the newest checkpoint;
only a copy the database cannot reach shows that. Beat's ``audit_checkpoint`` task signs a
checkpoint every ``AUDIT_CHECKPOINT_SECONDS`` and then publishes every checkpoint the sinks have
not seen yet, in order. ``verify_audit`` compares the database with the file sink by default.

``AUDIT_CHECKPOINT_SINKS`` lists where they go (comma-separated):

- ``file`` (always on): one JSON line per checkpoint appended to ``checkpoints.jsonl`` under
  ``AUDIT_CHECKPOINT_DIR``, opened append-only. Put that folder on storage the application's
  database credentials cannot touch: another host's mount, a bucket synchronised with an object
  lock (S3 Object Lock in compliance mode, Azure immutable blobs), or ``chattr +a``.
- ``syslog``: each line also goes to syslog (``AUDIT_CHECKPOINT_SYSLOG_ADDRESS``: a socket path
  or ``host:port``), to be kept by your log platform.
- a dotted path to a class with ``write(lines: list[str]) -> None`` (e.g. one that puts each
  line to an object store with a retention lock).
"""

from __future__ import annotations

import fcntl
import json
import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from review.models import AuditCheckpoint

from .chain import checkpoint_payload

FILE_NAME = "checkpoints.jsonl"


class Sink(Protocol):
    def write(self, lines: list[str]) -> None: ...


def sink_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR) / FILE_NAME


class SyslogSink:
    def __init__(self) -> None:
        address: Any = settings.AUDIT_CHECKPOINT_SYSLOG_ADDRESS
        if ":" in address and not address.startswith("/"):
            host, _, port = address.rpartition(":")
            address = (host, int(port))
        self.handler = logging.handlers.SysLogHandler(address=address)

    def write(self, lines: list[str]) -> None:
        try:
            for line in lines:
                record = logging.LogRecord("handoff.audit", logging.INFO, __file__, 0, line.strip(), None, None)
                self.handler.emit(record)
        finally:
            self.handler.close()


def _extra_sinks() -> list[Sink]:
    sinks: list[Sink] = []
    for name in settings.AUDIT_CHECKPOINT_SINKS:
        name = name.strip()
        if name in ("", "file"):
            continue
        sinks.append(SyslogSink() if name == "syslog" else import_string(name)())
    return sinks


def _last_seq(handle: Any) -> int:
    """The seq of the last line of the sink file, read from its end (the file only grows)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    block = min(size, 65536)
    while block:
        handle.seek(size - block)
        tail = handle.read(block).decode("utf-8", errors="replace")
        lines = [line for line in tail.splitlines() if line.strip()]
        if len(lines) > 1 or block == size:
            return int(json.loads(lines[-1])["seq"]) if lines else 0
        block = min(size, block * 4)
    return 0


def checkpoint_publish() -> int:
    """Write every checkpoint the sinks have not seen yet; return how many. Safe to call from
    several processes at once (a file lock) and again after a failure (it resumes)."""
    path = sink_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "rb+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        last = _last_seq(handle)
        lines = [
            json.dumps(checkpoint_payload(c), sort_keys=True) + "\n"
            for c in AuditCheckpoint.objects.filter(seq__gt=last).order_by("seq")
        ]
        if not lines:
            return 0
        for sink in _extra_sinks():
            sink.write(lines)
        handle.write("".join(lines).encode())
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)


def sink_read() -> list[dict[str, Any]] | None:
    """The checkpoints in the file sink, or None when there is no sink file yet."""
    path = sink_path()
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
