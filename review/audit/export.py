"""Exports of the audit trail (CSV and JSON Lines) that a third party can re-verify offline.

Every row carries the hashed header fields, the record's hash and its payload. Exports are
masked by default: every sensitive value (and any value the masking rules change) is replaced
by its masked form and its *commitment* (``offline.leaf_commitment``), and the record's salt is
withheld, so the verifier recomputes ``payload_sha256`` from the clear values and the
commitments without ever seeing the masked ones. Changing any value, masked or not, breaks it.

The last line is a manifest: for each chain in the export, whether the export claims the whole
chain, and the signed checkpoint whose head the chain's last record must match. A fresh
checkpoint is signed (and sent to the outside sink) before the export reads the trail, so every
exported record is covered.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from review.models import AuditArchive, AuditCheckpoint, AuditRecord

from .chain import checkpoint_payload, header_fields, timestamp
from .masking import MASK, mask_data
from .offline import EXPORT_FIELDS, GENESIS, MANIFEST_KIND, SALTED_KEYS, leaf_commitment, leaf_salt, path_key

_HIDDEN = object()


def masked_payload(payload: Any, salt: str) -> tuple[Any, dict[str, str]]:
    """The payload as a masked export shows it, and the commitments to the values it withholds."""
    shown_all = mask_data(payload)
    commitments: dict[str, str] = {}

    def walk(clear: Any, shown: Any, path: list[Any], key: str) -> Any:
        if isinstance(clear, dict):
            sub = shown if isinstance(shown, dict) else {}
            return {k: walk(v, sub.get(k, _HIDDEN), [*path, k], str(k)) for k, v in clear.items()}
        if isinstance(clear, list):
            sub = shown if isinstance(shown, list) and len(shown) == len(clear) else [_HIDDEN] * len(clear)
            return [walk(v, s, [*path, i], key) for i, (v, s) in enumerate(zip(clear, sub, strict=True))]
        salted = key in SALTED_KEYS
        if shown is _HIDDEN or salted or shown != clear:
            commitments[path_key(path)] = leaf_commitment(clear, leaf_salt(salt, path) if salted else "")
            return MASK if shown is _HIDDEN else shown
        return clear

    return walk(payload, shown_all, [], ""), commitments


def export_row(record: AuditRecord, *, unmasked: bool) -> dict[str, Any]:
    if unmasked:
        payload, salt, commitments = record.payload, record.payload_salt, {}
    else:
        payload, commitments = masked_payload(record.payload, record.payload_salt)
        salt = ""
    return {
        "id": record.pk,
        **header_fields(record),
        "hash": record.hash,
        "payload_masked": bool(commitments),
        "payload": payload,
        "payload_salt": salt,
        "commitments": commitments,
    }


def export_rows(records: Iterable[AuditRecord], *, may_unmask: Callable[[AuditRecord], bool]) -> Iterator[dict]:
    for record in records:
        yield export_row(record, unmasked=may_unmask(record))


def latest_checkpoint_for(chain: str) -> AuditCheckpoint | None:
    """The newest signed checkpoint holding a head of ``chain``."""
    return AuditCheckpoint.objects.filter(heads__has_key=chain).order_by("-seq").first()


def chain_claim(checkpoint: AuditCheckpoint, chain: str, *, complete: bool) -> dict[str, Any]:
    """What the manifest says of one chain. After archiving, the online chain (and so a whole
    export of it) starts after the signed archived head."""
    archived = AuditArchive.objects.filter(heads__has_key=chain).order_by("-seq").values_list("heads", flat=True)
    start = next(iter(archived), {}).get(chain) or [0, GENESIS]
    return {
        "complete": complete,
        "from_seq": start[0] + 1,
        "prev_hash": start[1],
        "checkpoint": checkpoint_payload(checkpoint),
    }


class Export:
    """One export: the records to stream and the manifest that closes it.

    ``whole_chain`` names the chain the export claims complete (a journey's export); any other
    export holds parts of chains. Build it after signing a fresh checkpoint: the records are
    cut at the heads that checkpoint (or an earlier one) signs.
    """

    def __init__(
        self,
        records: QuerySet[AuditRecord],
        *,
        may_unmask: Callable[[AuditRecord], bool],
        whole_chain: str | None = None,
        what: dict[str, Any] | None = None,
    ) -> None:
        self.may_unmask = may_unmask
        self.what = what or {}
        self.whole_chain = whole_chain
        self.claims: dict[str, dict[str, Any]] = {}
        self.heads: dict[str, int | None] = {}
        if whole_chain is not None:
            checkpoint = latest_checkpoint_for(whole_chain)
            head = checkpoint.heads[whole_chain][0] if checkpoint else 0
            records = records.filter(chain=whole_chain, seq__lte=head)
            if checkpoint is not None:
                self.claims[whole_chain] = chain_claim(checkpoint, whole_chain, complete=True)
                self.heads[whole_chain] = head
        else:
            # Only records a checkpoint can cover: those that existed when it was signed.
            upto = AuditRecord.objects.aggregate(m=Max("id"))["m"] or 0
            records = records.filter(id__lte=upto)
        self.records = records.order_by("chain", "seq")

    def _head(self, chain: str) -> int | None:
        if chain not in self.heads:
            checkpoint = latest_checkpoint_for(chain)
            self.heads[chain] = checkpoint.heads[chain][0] if checkpoint else None
            if checkpoint is not None:
                self.claims[chain] = chain_claim(checkpoint, chain, complete=False)
        return self.heads[chain]

    def rows(self) -> Iterator[dict[str, Any]]:
        for record in self.records.iterator(chunk_size=2000):
            head = self._head(record.chain)
            # A record no checkpoint covers yet (it committed after the checkpoint was signed)
            # cannot be proven current: it waits for the next export.
            if head is None or record.seq > head:
                continue
            yield export_row(record, unmasked=self.may_unmask(record))

    def manifest(self) -> dict[str, Any]:
        return {
            "format": 2,
            "exported_at": timestamp(timezone.now()),
            "what": self.what,
            "chains": self.claims,
        }

    def jsonl(self) -> Iterator[str]:
        yield from jsonl_lines(self.rows())
        yield json.dumps({"manifest": self.manifest()}, ensure_ascii=False, sort_keys=True) + "\n"

    def csv(self) -> Iterator[str]:
        yield from csv_lines(self.rows(), manifest=self.manifest)

    def lines(self, fmt: str) -> Iterator[str]:
        return self.csv() if fmt == "csv" else self.jsonl()


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def csv_lines(rows: Iterable[dict[str, Any]], *, manifest: Callable[[], dict[str, Any]] | None = None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **{name: "" if row[name] is None else row[name] for name in EXPORT_FIELDS},
                "payload_masked": "true" if row["payload_masked"] else "false",
                "payload": json.dumps(row["payload"], ensure_ascii=False, sort_keys=True),
                "commitments": json.dumps(row["commitments"], sort_keys=True) if row["commitments"] else "",
            }
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if manifest is not None:
        writer.writerow({"kind": MANIFEST_KIND, "payload": json.dumps(manifest(), ensure_ascii=False, sort_keys=True)})
    yield buffer.getvalue()
