"""The verifier's fast hashing helpers give exactly the digests of the documented formula.

The formula (docs/audit.md): a record's hash is the SHA-256 of the canonical JSON (keys sorted,
no spaces, UTF-8, ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``)
of its header fields; the payload digest is the same over the payload with every scalar replaced
by ``sha256(canonical_json([salt, value]))``. The reference functions below spell that out with
nothing cached or precomputed, and the tests compare them with ``review.audit.offline`` on
awkward values.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from review.audit import offline
from review.audit.offline import HASHED_FIELDS, SALTED_KEYS, payload_digest, record_hash, record_hash_values


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_record_hash(fields: dict[str, Any]) -> str:
    return _sha(_canonical({name: fields.get(name) for name in HASHED_FIELDS}))


def reference_payload_digest(payload: Any, salt: str | None, commitments: dict[str, str] | None = None) -> str:
    commitments = commitments or {}

    def walk(value: Any, path: list[Any], key: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, [*path, k], str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, [*path, i], key) for i, v in enumerate(value)]
        name = _canonical(path).decode()
        if name in commitments:
            return commitments[name]
        if key in SALTED_KEYS:
            leaf_salt = _sha(f"{salt}:{name}".encode())
            return _sha(_canonical([leaf_salt, value]))
        return _sha(_canonical(["", value]))

    return _sha(_canonical(walk(payload, [], "")))


AWKWARD = [
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "tab\tnew line\ncarriage\rbell\x07 nul\x00 escape\x1b del\x7f",
    "é ü ß — “quotes” 😀 \u2028 \u2029 \ufeff",
    "x" * 500,
    0,
    -1,
    2**70,
    1.5,
    -0.0,
    0.0,
    1e-7,
    True,
    False,
    None,
]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.3:
        keys = [*rng.sample(sorted(SALTED_KEYS), 1), "amount", "note", "ü", "1"]
        return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return rng.choice(AWKWARD)


def test_record_hash_of_a_tuple_equals_the_documented_formula():
    rng = random.Random(5)
    for _ in range(500):
        fields = {name: rng.choice(AWKWARD) for name in HASHED_FIELDS}
        values = [fields[name] for name in HASHED_FIELDS]
        expected = reference_record_hash(fields)
        assert record_hash_values(values) == expected
        assert record_hash(fields) == expected


def test_record_hash_values_wants_every_field():
    with pytest.raises(IndexError):
        record_hash_values(["journey:1", 1])


def test_payload_digest_equals_the_documented_formula_even_with_the_cache_warm():
    rng = random.Random(9)
    payloads = [_random_value(rng) for _ in range(400)]
    payloads += [{"card_number": "4111111111111111", "nested": [{"dob": "1980-01-01"}, 1, 1.0, True]}]
    payloads += [{"a": 1, "b": 1.0, "c": True, "d": "1", "e": -0.0, "f": 0.0, "g": None}]
    for _round in range(2):  # the second round hits the memo of unsalted commitments
        for payload in payloads:
            assert payload_digest(payload, salt="s4lt") == reference_payload_digest(payload, "s4lt")


def test_a_full_memo_starts_over_and_still_gives_the_same_digests(monkeypatch):
    monkeypatch.setattr(offline, "_PLAIN_CACHE_SIZE", 3)
    offline._PLAIN_CACHE.clear()
    payload = {f"k{n}": f"value {n}" for n in range(10)}
    assert payload_digest(payload, salt="") == reference_payload_digest(payload, "")
    assert len(offline._PLAIN_CACHE) <= 3


def test_commitments_replace_masked_leaves_and_a_missing_salt_is_refused():
    payload = {"card": "4111111111111111", "amount": "12.00"}
    masked = {'["card"]': "c" * 64}
    assert payload_digest(payload, salt=None, commitments=masked) == reference_payload_digest(payload, None, masked)
    with pytest.raises(offline.MissingSalt):
        payload_digest(payload, salt=None)
