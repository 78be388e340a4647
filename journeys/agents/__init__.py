"""Agent adapters: given a journey snapshot, say what to do next."""

from __future__ import annotations

from .base import AgentAdapter, AgentError, AgentTransientError, Proposal, Snapshot, Turn

__all__ = ["AgentAdapter", "AgentError", "AgentTransientError", "Proposal", "Snapshot", "Turn", "adapter_for"]


def adapter_for(kind: str) -> AgentAdapter:
    from .scripted import ScriptedAgent

    if kind == "scripted":
        return ScriptedAgent()
    if kind == "external":
        from .external import ExternalAgent

        return ExternalAgent()
    if kind == "llm":
        from .llm import LlmAgent

        return LlmAgent()
    raise AgentError(f"No adapter is installed for agents of kind {kind!r}.")
