"""Exports of the audit trail (CSV and JSON Lines) that a third party can re-verify offline.

Every row carries the hashed header fields, the record's hash and its payload. A payload the
reader may not see unmasked (sensitive customer data) is replaced by its masked form and flagged
``payload_masked``: the chain still verifies through ``payload_sha256``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from review.models import AuditRecord

from .chain import header_fields
from .masking import mask_data
from .offline import EXPORT_FIELDS


def export_row(record: AuditRecord, *, unmasked: bool) -> dict[str, Any]:
    payload = record.payload
    masked_payload = mask_data(payload)
    masked = not unmasked and masked_payload != payload
    return {
        "id": record.pk,
        **header_fields(record),
        "hash": record.hash,
        "payload_masked": masked,
        "payload": masked_payload if masked else payload,
    }


def export_rows(records: Iterable[AuditRecord], *, may_unmask: Callable[[AuditRecord], bool]) -> Iterator[dict]:
    for record in records:
        yield export_row(record, unmasked=may_unmask(record))


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **{name: "" if row[name] is None else row[name] for name in EXPORT_FIELDS},
                "payload_masked": "true" if row["payload_masked"] else "false",
                "payload": json.dumps(row["payload"], ensure_ascii=False, sort_keys=True),
            }
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
