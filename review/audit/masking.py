"""Masking sensitive customer fields: card numbers, dates of birth, full addresses.

Values are masked wherever they are shown to people (the journey page's facts and request, the
timeline's action parameters, audit payloads and exports). A person whose team holds a
``SensitiveDataGrant`` on the journey's definition may unmask one field at a time with a stated
reason; that "break glass" is written to the journey's audit chain.
"""

from __future__ import annotations

from typing import Any

MASK = "••••"

# Key name → kind of sensitive value. Keys are matched at any depth of a JSON value.
SENSITIVE_KEYS = {
    "card": "card",
    "card_number": "card",
    "pan": "card",
    "date_of_birth": "dob",
    "dob": "dob",
    "birth_date": "dob",
    "address": "address",
    "new_address": "address",
    "old_address": "address",
    "full_address": "address",
}
SECTIONS = ("request", "facts")


def is_sensitive(key: Any) -> bool:
    return str(key) in SENSITIVE_KEYS


def mask_value(key: str, value: Any) -> Any:
    """The masked form of ``value`` under ``key``; other keys pass through unchanged."""
    kind = SENSITIVE_KEYS.get(str(key))
    if kind is None or value in (None, ""):
        return value
    if kind == "card":
        digits = "".join(ch for ch in str(value) if ch.isalnum())
        return f"{MASK} {digits[-4:]}" if len(digits) > 4 else MASK
    if kind == "dob":
        return f"{MASK}-••-••"
    # An address keeps only its last part (town or postcode area) so a person can still tell
    # two addresses apart without seeing where the customer lives.
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    return f"{MASK}, {parts[-1].split()[0]}" if len(parts) > 1 else MASK


def mask_data(value: Any, key: str = "") -> Any:
    """``value`` with every sensitive key masked, at any depth."""
    if isinstance(value, dict):
        return {k: mask_data(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_data(v, key) for v in value]
    if key and is_sensitive(key):
        return mask_value(key, value)
    return value


def field_path(section: str, key: str) -> str:
    return f"{section}.{key}"


def lookup_field(context: dict[str, Any], path: str) -> Any:
    """The raw value at ``section.key`` in a journey's context; ``KeyError`` for anything that
    is not a sensitive field of the request or the facts."""
    section, _, key = path.partition(".")
    if section not in SECTIONS or not is_sensitive(key):
        raise KeyError(path)
    values = context.get(section) or {}
    if key not in values:
        raise KeyError(path)
    return values[key]
