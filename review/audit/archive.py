"""Retention: records past ``AUDIT_RETENTION_DAYS`` (365 by default) move to JSON Lines archives.

``audit_archive`` writes, per chain, every record up to the newest one older than the cutoff to
one file in ``AUDIT_ARCHIVE_DIR`` — full rows with their salts, the same format as an export,
closed by a manifest that claims each chain whole from where the previous archive stopped — and
appends a signed "archived up to" row (``AuditArchive``) holding each chain's last archived
``[seq, hash]``. Only then are the archived records deleted: the database allows a DELETE on the
trail only for records such a row covers, and only to a role holding DELETE (the owner role, via
``MIGRATION_DATABASE_URL``; never the application's role).

Afterwards ``verify_audit`` checks each online chain from the archived head on (its first
online record must link to the archived hash), and ``offline.py FILE`` proves an archive file.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Max
from django.utils import timezone

from review.models import AuditArchive, AuditRecord

from .chain import audit_key, audit_key_id, timestamp
from .export import export_row
from .offline import GENESIS, checkpoint_hash, checkpoint_signature


class ArchiveNotAllowed(RuntimeError):
    """The connection's role may not delete from the trail (the application's role never may)."""


def archive_alias() -> str:
    """Deleting archived records needs the owner role: use it when it is configured."""
    return "owner" if "owner" in connections.databases else DEFAULT_DB_ALIAS


def archive_payload(archive: AuditArchive) -> dict[str, Any]:
    """An archive row in the shape of a checkpoint, so offline.py checks it the same way."""
    return {
        "kind": "archive",
        "seq": archive.seq,
        "at": timestamp(archive.at),
        "upto_record_id": 0,
        "cutoff": timestamp(archive.cutoff),
        "heads": archive.heads,
        "prev_hash": archive.prev_hash,
        "hash": archive.hash,
        "signature": archive.signature,
        "key_id": archive.key_id,
    }


def archived_heads(using: str = DEFAULT_DB_ALIAS) -> dict[str, list[Any]]:
    """Per chain, the last archived ``[seq, hash]`` over every archive."""
    heads: dict[str, list[Any]] = {}
    for archive in AuditArchive.objects.using(using).order_by("seq").iterator():
        for chain, head in archive.heads.items():
            if chain not in heads or head[0] > heads[chain][0]:
                heads[chain] = head
    return heads


def _delete_archived(using: str, tops: dict[str, int]) -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "DELETE FROM review_auditrecord r USING unnest(%s::text[], %s::bigint[]) AS t(chain, top) "
                "WHERE r.chain = t.chain AND r.seq <= t.top",
                [list(tops), list(tops.values())],
            )
        else:
            for chain, top in tops.items():
                cursor.execute("DELETE FROM review_auditrecord WHERE chain = %s AND seq <= %s", [chain, top])


def audit_archive(*, cutoff: datetime | None = None, using: str | None = None) -> AuditArchive | None:
    """Archive every chain's records up to its newest record older than ``cutoff``. None when
    nothing is past retention. Serialised with a lock; a run that fails leaves the trail as it
    was (the archive row and the deletes commit together)."""
    using = using or archive_alias()
    cutoff = cutoff or timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    folder = Path(settings.AUDIT_ARCHIVE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT has_table_privilege('review_auditrecord', 'DELETE')")
                if not cursor.fetchone()[0]:
                    raise ArchiveNotAllowed(
                        "Archiving deletes from the audit trail, which this database role may not do: "
                        "run it as the owner role (set MIGRATION_DATABASE_URL)."
                    )
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('audit:archive'))")
        records = AuditRecord.objects.using(using)
        tops = dict(
            records.filter(at__lt=cutoff).values_list("chain").annotate(top=Max("seq")).values_list("chain", "top")
        )
        if not tops:
            return None
        before = archived_heads(using)
        previous = AuditArchive.objects.using(using).order_by("-seq").first()
        heads: dict[str, list[Any]] = {}
        for chain, top in tops.items():
            heads[chain] = [top, records.get(chain=chain, seq=top).hash]
        archive = AuditArchive(
            seq=(previous.seq + 1) if previous else 1,
            at=timezone.now(),
            cutoff=cutoff,
            heads=heads,
            prev_hash=previous.hash if previous else GENESIS,
            key_id=audit_key_id(),
        )
        payload = archive_payload(archive)
        archive.hash = checkpoint_hash(payload)
        archive.signature = checkpoint_signature(audit_key(), archive.hash)
        payload = archive_payload(archive)
        name = f"audit-archive-{archive.seq:06d}-{archive.at:%Y%m%dT%H%M%SZ}.jsonl"
        path = folder / name
        digest = hashlib.sha256()
        count = 0
        with open(path.with_suffix(".partial"), "wb") as handle:
            for chain in sorted(tops):
                for record in records.filter(chain=chain, seq__lte=tops[chain]).order_by("seq").iterator(2000):
                    line = (
                        json.dumps(export_row(record, unmasked=True), ensure_ascii=False, sort_keys=True) + "\n"
                    ).encode()
                    digest.update(line)
                    handle.write(line)
                    count += 1
            manifest = {
                "format": 2,
                "exported_at": payload["at"],
                "what": {"archive": archive.seq, "cutoff": payload["cutoff"]},
                "chains": {
                    chain: {
                        "complete": True,
                        "from_seq": before[chain][0] + 1 if chain in before else 1,
                        "prev_hash": before[chain][1] if chain in before else GENESIS,
                        "checkpoint": payload,
                    }
                    for chain in sorted(tops)
                },
            }
            line = (json.dumps({"manifest": manifest}, ensure_ascii=False, sort_keys=True) + "\n").encode()
            digest.update(line)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(path.with_suffix(".partial"), path)
        archive.records = count
        archive.file_name = name
        archive.file_sha256 = digest.hexdigest()
        archive.save(force_insert=True, using=using)
        _delete_archived(using, tops)
    return archive
