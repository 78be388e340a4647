"""Agent adapters: given a journey snapshot, say what to do next.

Adapters are registered by agent kind. The product registers the external and llm agents; an
installed app may register more (the demo app registers the scripted agent in its ``ready``).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import AgentAdapter, AgentError, AgentTransientError, Proposal, Snapshot, Turn

__all__ = [
    "AgentAdapter",
    "AgentError",
    "AgentTransientError",
    "Proposal",
    "Snapshot",
    "Turn",
    "adapter_for",
    "register_adapter",
]

_ADAPTERS: dict[str, Callable[[], AgentAdapter]] = {}


def register_adapter(kind: str, factory: Callable[[], AgentAdapter]) -> None:
    _ADAPTERS[kind] = factory


def _external() -> AgentAdapter:
    from .external import ExternalAgent

    return ExternalAgent()


def _llm() -> AgentAdapter:
    from .llm import LlmAgent

    return LlmAgent()


register_adapter("external", _external)
register_adapter("llm", _llm)


def adapter_for(kind: str) -> AgentAdapter:
    factory = _ADAPTERS.get(kind)
    if factory is None:
        raise AgentError(f"No adapter is installed for agents of kind {kind!r}.")
    return factory()
