"""Template filters for masking sensitive customer fields and showing audit payloads."""

from __future__ import annotations

import json
from typing import Any

from django import template

from review.audit.masking import is_sensitive as _is_sensitive
from review.audit.masking import mask_data, mask_value

register = template.Library()


@register.filter
def mask(value: Any, key: str) -> Any:
    """``{{ value|mask:key }}``: the masked form when ``key`` names a sensitive field."""
    if isinstance(value, dict | list):
        return mask_data(value, key)
    return mask_value(key, value)


@register.filter
def is_sensitive(key: Any) -> bool:
    return _is_sensitive(key)


@register.filter
def masked_json(value: Any) -> str:
    return json.dumps(mask_data(value), indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def edit_changes(edit: Any) -> list[tuple[str, Any, Any]]:
    """``[(name, before, after)]`` for each parameter an edit changed, in the order given."""
    if not isinstance(edit, dict):
        return []
    before = edit.get("before") or {}
    after = edit.get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    names = edit.get("changed") or [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    return [(str(name), before.get(name), after.get(name)) for name in names]
