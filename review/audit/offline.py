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
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

GENESIS = "0" * 64

# The header fields a record's hash covers, in the export's column order. The payload is covered
# through its own digest, which commits to every value separately (``payload_digest``), so an
# export may withhold a value and still prove everything else.
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
EXPORT_FIELDS = ["id", *HASHED_FIELDS, "hash", "payload_masked", "payload", "payload_salt", "commitments"]
# Values under these keys (at any depth) are committed with a salt kept in the database: a masked
# export gives their commitments and withholds the salt, so the value cannot be guessed back.
SALTED_KEYS = frozenset(
    {
        "card",
        "card_number",
        "pan",
        "date_of_birth",
        "dob",
        "birth_date",
        "address",
        "new_address",
        "old_address",
        "full_address",
    }
)
# The last line of a JSON Lines export (the last row of a CSV, with this kind) says which chains
# the export holds, whether each is whole, and carries the signed checkpoint of each.
MANIFEST_KIND = "export_manifest"


# ``canonical_json`` below is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False, default=str)``. The hashing helpers encode structures they have just built
# (flat, acyclic), so they call the C encoder directly, made once, instead of building an encoder
# and a circular-reference guard on every call: the same text, a few microseconds sooner.
def _one_shot(*, sort_keys: bool) -> Callable[[Any], str]:
    encoder = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, default=str)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator: the plain encoder
        return encoder.encode
    to_text = json.encoder.encode_basestring
    chunks = make(None, encoder.default, to_text, None, ":", ",", sort_keys, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return to_text(value)
        return "".join(chunks(value, 0))

    return encode


_encode_sorted = _one_shot(sort_keys=True)
# For dicts whose keys were inserted in sorted order already.
_encode_as_ordered = _one_shot(sort_keys=False)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


sha256 = hashlib.sha256


def sha256_hex(data: bytes) -> str:
    return sha256(data).hexdigest()


class MissingSalt(ValueError):
    """A sensitive value that is neither in the clear with its salt nor given as a commitment."""


def path_key(path: list[Any]) -> str:
    """The name of a leaf in ``commitments``: the JSON list of keys and indexes leading to it."""
    return canonical_json(path).decode()


def leaf_salt(record_salt: str, path: list[Any]) -> str:
    return sha256_hex(f"{record_salt}:{path_key(path)}".encode())


def leaf_commitment(value: Any, salt: str = "") -> str:
    """The commitment to one scalar value. Sensitive values are salted (a date of birth has too
    few possibilities to hide behind a bare hash); the rest are not, so a verifier can recompute
    them from the clear value alone."""
    return sha256_hex(_encode_sorted([salt, value]).encode())


# Unsalted commitments are a pure function of the value, and the same values (amounts, account
# numbers, outcomes) recur across many records: remember the recent ones. Keyed by type as well as
# value, so 1, 1.0 and True stay apart; floats are not kept (0.0 == -0.0 but they encode apart).
_PLAIN_CACHE: dict[tuple[type, Any], str] = {}
_PLAIN_CACHE_SIZE = 50_000
_PLAIN_CACHE_LONGEST = 200
_SCALARS = (str, int, float, bool, type(None))


def _plain_commitment(value: Any) -> str:
    kind = value.__class__
    if kind is str:
        if len(value) > _PLAIN_CACHE_LONGEST:
            return leaf_commitment(value)
    elif kind is not int and kind is not bool and value is not None:
        return leaf_commitment(value)
    key = (kind, value)
    digest = _PLAIN_CACHE.get(key)
    if digest is None:
        digest = leaf_commitment(value)
        if len(_PLAIN_CACHE) >= _PLAIN_CACHE_SIZE:
            _PLAIN_CACHE.clear()
        _PLAIN_CACHE[key] = digest
    return digest


def _committed(value: Any, path: list[Any], key: str, salt: str | None, commitments: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = str(k)
            if not commitments and v.__class__ in _SCALARS and name not in SALTED_KEYS:
                out[k] = _plain_commitment(v)  # the common leaf, without building its path
            else:
                out[k] = _committed(v, [*path, k], name, salt, commitments)
        return out
    if isinstance(value, list):
        return [_committed(v, [*path, i], key, salt, commitments) for i, v in enumerate(value)]
    if commitments:
        name = path_key(path)
        if name in commitments:
            return commitments[name]
    if key in SALTED_KEYS:
        if salt is None:
            raise MissingSalt(path_key(path))
        return leaf_commitment(value, leaf_salt(salt, path))
    return _plain_commitment(value)


def committed_tree(
    payload: Any,
    *,
    record_salt: str | None,
    commitments: dict[str, str] | None = None,
) -> Any:
    """``payload`` with every scalar replaced by its commitment. A leaf listed in
    ``commitments`` (masked in an export) is taken from there; any other sensitive leaf needs
    ``record_salt`` to be recomputed from its clear value."""
    return _committed(payload, [], "", record_salt, commitments or {})


def payload_digest(payload: Any, *, salt: str | None = "", commitments: dict[str, str] | None = None) -> str:
    """``payload_sha256``: the digest of the payload with each value committed on its own, so an
    export can withhold any value (give its commitment instead) and still prove the rest."""
    tree = _committed(payload, [], "", salt, commitments or {})
    return sha256(_encode_sorted(tree).encode()).hexdigest()


_SORTED_FIELDS = sorted(HASHED_FIELDS)
_in_sorted_order = itemgetter(*(HASHED_FIELDS.index(name) for name in _SORTED_FIELDS))


# The hashed fields in the order canonical JSON writes them (sorted): a verifier that reads rows
# as tuples selects its columns in this order and calls ``record_hash_sorted``.
SORTED_HASHED_FIELDS = tuple(_SORTED_FIELDS)


def record_hash_sorted(values: Sequence[Any]) -> str:
    """``record_hash`` of the values of ``SORTED_HASHED_FIELDS``, given in that order."""
    return sha256(_encode_as_ordered(dict(zip(_SORTED_FIELDS, values, strict=True))).encode()).hexdigest()


def record_hash_values(values: Sequence[Any]) -> str:
    """``record_hash`` of the values of ``HASHED_FIELDS``, given in that order: the canonical JSON
    object of those fields (keys sorted), hashed."""
    return record_hash_sorted(_in_sorted_order(values))


def record_hash(fields: dict[str, Any]) -> str:
    return record_hash_values([fields.get(name) for name in HASHED_FIELDS])


def checkpoint_hash(fields: dict[str, Any]) -> str:
    return sha256_hex(
        canonical_json({name: fields.get(name) for name in ("seq", "at", "upto_record_id", "heads", "prev_hash")})
    )


def checkpoint_signature(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def read_export(lines: Iterable[str], fmt: str) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines or CSV export as dicts with the types the hash expects; the manifest
    comes as ``{"manifest": {...}}``."""
    if fmt == "jsonl":
        for line in lines:
            if line.strip():
                yield json.loads(line)
        return
    for row in csv.DictReader(lines):
        if row.get("kind") == MANIFEST_KIND and not row.get("chain"):
            yield {"manifest": json.loads(row.get("payload") or "null")}
            continue
        parsed: dict[str, Any] = dict(row)
        for name in INT_FIELDS | {"id"}:
            parsed[name] = int(row[name]) if row.get(name) not in (None, "") else None
        parsed["payload_masked"] = row.get("payload_masked") == "true"
        parsed["payload"] = json.loads(row["payload"]) if row.get("payload") else None
        parsed["commitments"] = json.loads(row["commitments"]) if row.get("commitments") else {}
        yield parsed


def _check_manifest(
    manifest: dict[str, Any],
    by_chain: dict[str, list[dict[str, Any]]],
    problems: list[str],
    *,
    key: bytes | None,
    outside: dict[int, dict[str, Any]] | None,
) -> list[str]:
    """Check each chain against the manifest's claim and its signed checkpoint; return the chains
    proven whole."""
    claims = manifest.get("chains") or {}
    whole: list[str] = []
    for chain in by_chain:
        if chain not in claims:
            problems.append(f"{chain}: not listed in the export's manifest")
    for chain, claim in claims.items():
        links = by_chain.get(chain, [])
        checkpoint = claim.get("checkpoint") or {}
        label = f"{chain}: checkpoint {checkpoint.get('seq')}"
        if checkpoint_hash(checkpoint) != checkpoint.get("hash"):
            problems.append(f"{label} does not match its hash")
            continue
        if key is not None and checkpoint_signature(key, checkpoint["hash"]) != checkpoint.get("signature"):
            problems.append(f"{label} is not signed with the server's key")
        if outside is not None:
            copy = outside.get(checkpoint.get("seq"))
            if copy is None:
                problems.append(f"{label} is not in the outside copy of the checkpoints")
            elif (copy.get("hash"), copy.get("signature")) != (checkpoint.get("hash"), checkpoint.get("signature")):
                problems.append(f"{label} differs from the outside copy")
        head = (checkpoint.get("heads") or {}).get(chain)
        if not head:
            problems.append(f"{label} holds no head for this chain")
            continue
        head_seq, head_hash = head
        by_seq = {row["seq"]: row for row in links}
        if any(seq > head_seq for seq in by_seq):
            problems.append(f"{chain}: records after #{head_seq}, the head its checkpoint signs")
        if head_seq in by_seq and by_seq[head_seq]["hash"] != head_hash:
            problems.append(f"{chain}: record #{head_seq} differs from the head its signed checkpoint holds")
        if claim.get("complete"):
            first = int(claim.get("from_seq") or 1)
            wanted = set(range(first, head_seq + 1))
            missing = sorted(wanted - set(by_seq))
            if missing:
                problems.append(
                    f"{chain}: the export claims the whole chain #{first} to #{head_seq} but "
                    f"{len(missing)} record(s) are missing (first: #{missing[0]})"
                )
            elif by_seq[first]["prev_hash"] != (claim.get("prev_hash") or GENESIS):
                problems.append(f"{chain}: #{first} does not link to where the chain starts")
            else:
                whole.append(chain)
    return whole


def verify_rows(
    rows: Iterable[dict[str, Any]],
    *,
    key: bytes | None = None,
    outside_checkpoints: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check every row's hash and payload digest, each link between consecutive rows, and the
    manifest: a chain the export claims whole must have every record up to the head its signed
    checkpoint holds. ``key`` (the server's audit key) also checks the checkpoints' signatures;
    ``outside_checkpoints`` (the copy kept outside the database) checks they are the real ones."""
    by_chain: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    manifest: dict[str, Any] | None = None
    count = masked = 0
    for row in rows:
        if "manifest" in row:
            if manifest is not None:
                problems.append("the export holds two manifests")
            manifest = row["manifest"] or {}
            continue
        if manifest is not None:
            problems.append("records follow the manifest (the manifest must be the last line)")
        count += 1
        by_chain.setdefault(row["chain"], []).append(row)
    for chain, links in by_chain.items():
        links.sort(key=lambda r: r["seq"])
        previous: dict[str, Any] | None = None
        for row in links:
            name = f"record {row.get('id')} ({chain} #{row['seq']})"
            commitments = row.get("commitments") or {}
            if commitments:
                masked += 1
            try:
                digest = payload_digest(
                    row.get("payload"), salt=row.get("payload_salt") or None, commitments=commitments
                )
            except MissingSalt as exc:
                problems.append(f"{name}: sensitive value {exc} is neither in the clear with its salt nor committed")
            else:
                if digest != row["payload_sha256"]:
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
        if a is not None and b["seq"] != a["seq"] + 1
    )
    whole: list[str] = []
    if manifest is None:
        problems.append("the export has no manifest: it was cut short or is not a Handoff export")
    else:
        outside = None
        if outside_checkpoints is not None:
            outside = {c.get("seq"): c for c in outside_checkpoints}
        whole = _check_manifest(manifest, by_chain, problems, key=key, outside=outside)
    return {
        "ok": not problems,
        "records": count,
        "chains": len(by_chain),
        "whole_chains": len(whole),
        "masked_payloads": masked,
        "gaps": gaps,
        "problems": problems,
    }


def read_checkpoints(path: str) -> list[dict[str, Any]]:
    """A JSON Lines copy of the signed checkpoints (the sink's file, or an export of them)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def verify_file(
    path: str,
    *,
    key: bytes | None = None,
    outside_checkpoints: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    fmt = "csv" if path.endswith(".csv") else "jsonl"
    with open(path, encoding="utf-8", newline="") as handle:
        return verify_rows(read_export(handle, fmt), key=key, outside_checkpoints=outside_checkpoints)


def summary(report: dict[str, Any]) -> str:
    return (
        f"{report['records']} records in {report['chains']} chains, {report['whole_chains']} proven whole "
        f"up to their signed checkpoint; {report['gaps']} gaps in partial chains (records not in the export); "
        f"{report['masked_payloads']} masked payloads checked through their commitments."
    )


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Re-verify a Handoff audit export without Handoff.")
    parser.add_argument("export", help="EXPORT.jsonl or EXPORT.csv")
    parser.add_argument("--checkpoints", help="the copy of the signed checkpoints kept outside the database")
    parser.add_argument("--key-file", help="a file holding the audit signing key, to check signatures")
    args = parser.parse_args(argv[1:])
    key = None
    if args.key_file:
        with open(args.key_file, "rb") as handle:
            key = handle.read().strip()
    outside = read_checkpoints(args.checkpoints) if args.checkpoints else None
    try:
        report = verify_file(args.export, key=key, outside_checkpoints=outside)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"FAILED: cannot read {args.export} as an audit export: {exc}")
        return 2
    for problem in report["problems"]:
        print("BROKEN", problem)
    print(summary(report))
    print("OK: every exported record is intact." if report["ok"] else "FAILED")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
