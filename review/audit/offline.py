"""Re-verify an audit export without Handoff, its database or its key.

This module uses the Python standard library only, so a third party can copy it next to an
export and run ``python offline.py export.jsonl`` (or ``export.csv``). Handoff itself uses the
same functions to compute hashes, so the formula has exactly one definition.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

GENESIS = "0" * 64

# The header fields a record's hash covers, in the export's column order. The payload is covered
# through its own digest, so an export may mask a payload and still prove the chain.
HASHED_FIELDS = [
    "chain",
    "seq",
    "prev_hash",
    "at",
    "kind",
    "actor_kind",
    "actor_label",
    "actor_user_id",
    "actor_agent_id",
    "journey_id",
    "definition_id",
    "customer_ref",
    "action_type",
    "decision",
    "proposal_id",
    "event_id",
    "summary",
    "payload_sha256",
]
INT_FIELDS = {
    "seq",
    "actor_user_id",
    "actor_agent_id",
    "journey_id",
    "definition_id",
    "proposal_id",
    "event_id",
}
EXPORT_FIELDS = ["id", *HASHED_FIELDS, "hash", "payload_masked", "payload"]


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_digest(payload: Any) -> str:
    return sha256_hex(canonical_json(payload))


def record_hash(fields: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({name: fields.get(name) for name in HASHED_FIELDS}))


def checkpoint_hash(fields: dict[str, Any]) -> str:
    return sha256_hex(
        canonical_json({name: fields.get(name) for name in ("seq", "at", "upto_record_id", "heads", "prev_hash")})
    )


def checkpoint_signature(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def read_export(lines: Iterable[str], fmt: str) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines or CSV export as dicts with the types the hash expects."""
    if fmt == "jsonl":
        for line in lines:
            if line.strip():
                yield json.loads(line)
        return
    for row in csv.DictReader(lines):
        parsed: dict[str, Any] = dict(row)
        for name in INT_FIELDS | {"id"}:
            parsed[name] = int(row[name]) if row.get(name) not in (None, "") else None
        parsed["payload_masked"] = row.get("payload_masked") == "true"
        parsed["payload"] = json.loads(row["payload"]) if row.get("payload") else None
        yield parsed


def verify_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Check every row's hash, payload digest and, where the export holds consecutive links, that
    each link points at the one before. A chain included from its first link is proven whole
    up to its last exported link; gaps (a filtered search) are counted, not treated as breaks."""
    by_chain: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    count = masked = 0
    for row in rows:
        count += 1
        by_chain.setdefault(row["chain"], []).append(row)
    for chain, links in by_chain.items():
        links.sort(key=lambda r: r["seq"])
        previous: dict[str, Any] | None = None
        for row in links:
            name = f"record {row.get('id')} ({chain} #{row['seq']})"
            if row.get("payload_masked"):
                masked += 1
            elif payload_digest(row.get("payload")) != row["payload_sha256"]:
                problems.append(f"{name}: payload does not match its digest")
            if record_hash(row) != row["hash"]:
                problems.append(f"{name}: hash does not match its content")
            if row["seq"] == 1 and row["prev_hash"] != GENESIS:
                problems.append(f"{name}: first link does not start the chain")
            if previous is not None and previous["seq"] == row["seq"] - 1 and row["prev_hash"] != previous["hash"]:
                problems.append(f"{name}: does not link to #{previous['seq']}")
            previous = row
    gaps = sum(
        1
        for links in by_chain.values()
        for a, b in zip([None, *links], links, strict=False)
        if (a is None and b["seq"] != 1) or (a is not None and b["seq"] != a["seq"] + 1)
    )
    return {
        "ok": not problems,
        "records": count,
        "chains": len(by_chain),
        "masked_payloads": masked,
        "gaps": gaps,
        "problems": problems,
    }


def verify_file(path: str) -> dict[str, Any]:
    fmt = "csv" if path.endswith(".csv") else "jsonl"
    with open(path, encoding="utf-8", newline="") as handle:
        return verify_rows(read_export(handle, fmt))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python offline.py EXPORT.jsonl|EXPORT.csv", file=sys.stderr)
        return 2
    report = verify_file(argv[1])
    for problem in report["problems"]:
        print("BROKEN", problem)
    print(
        f"{report['records']} records in {report['chains']} chains; {report['gaps']} gaps "
        f"(records not in the export); {report['masked_payloads']} masked payloads checked "
        "by digest only."
    )
    print("OK: every exported record is intact." if report["ok"] else "FAILED")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
