"""What the demo's journey modules share."""

from __future__ import annotations

from typing import Any

# A simulated customer's reply: (text, data, intent).
Reply = tuple[str, dict[str, Any], str]


def step(key: str, title: str, actions: list[str], nxt: dict[str, str], does: str) -> dict[str, Any]:
    return {"key": key, "title": title, "actions": actions, "next": nxt, "does": does}
