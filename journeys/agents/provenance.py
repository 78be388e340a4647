"""Who proposed an action and with what: agent, its version and configuration, the model.

The runtime's agents carry their version and model in ``Agent.config`` (``version``,
``model``); an external agent states them in its API call, which wraps the propose service in
``claimed_provenance`` so the record is written in the same transaction as the proposal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_claimed: ContextVar[dict[str, str] | None] = ContextVar("claimed_provenance", default=None)


@contextmanager
def claimed_provenance(**fields: str) -> Iterator[None]:
    """What the caller says about the proposer (e.g. an external agent's version and model)."""
    token = _claimed.set({k: str(v) for k, v in fields.items() if v})
    try:
        yield
    finally:
        _claimed.reset(token)


def config_fingerprint(config: dict[str, Any]) -> str:
    """A short, stable digest of an agent's configuration, minus secrets."""
    visible = {k: v for k, v in (config or {}).items() if "key" not in k.lower() and "secret" not in k.lower()}
    return hashlib.sha256(json.dumps(visible, sort_keys=True, default=str).encode()).hexdigest()[:12]


def proposal_provenance(proposal: Any) -> dict[str, Any]:
    """Provenance of a proposal (the proposer part; the policy adds its rules version)."""
    claimed = _claimed.get() or {}
    agent = proposal.proposed_by_agent if proposal.proposed_by_agent_id else None
    if agent is not None:
        config = agent.config or {}
        from django.conf import settings

        model = claimed.get("model") or config.get("model", "")
        if not model and agent.kind == "llm":
            model = getattr(settings, "LLM_MODEL", "")
        return {
            "proposer": "agent",
            "agent": agent.name,
            "agent_kind": agent.kind,
            "agent_version": claimed.get("agent_version") or str(config.get("version", "")),
            "config": config_fingerprint(config),
            "model": model,
            "via": claimed.get("via", "runtime"),
        }
    user = proposal.proposed_by_user
    return {
        "proposer": "person",
        "person": user.get_username() if user is not None else "",
        "via": claimed.get("via", "console"),
    }
