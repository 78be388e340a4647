"""The contract between the runtime and an agent.

One call, ``next_turn(snapshot) -> Turn``, made *outside* any database lock. The agent reads
the results of the actions it proposed earlier in the current step (``snapshot.results``) and
the customer's latest reply, and answers with proposals and/or what happens next. It must be
safe to ask again with the same snapshot: the runtime may drop a turn (takeover) and ask anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class AgentError(Exception):
    """The agent cannot go on; the journey falls back to a person."""


class AgentTransientError(AgentError):
    """The agent failed in a way a retry may fix (model timeout, rate limit…)."""


@dataclass(frozen=True)
class Proposal:
    action: str
    params: dict[str, Any]
    explanation: str
    confidence: float | None = None


Then = Literal["continue", "goto", "wait_customer", "complete", "handoff", "abandon"]


@dataclass
class Turn:
    proposals: list[Proposal] = field(default_factory=list)
    then: Then = "continue"
    goto: str = ""
    note: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    # For handoff: why a person is needed, and the exception kind it raises.
    reason: str = ""
    exception_kind: str = ""
    confidence: float | None = None
    # Start a linked journey: {"definition": key, "data": {...}, "message": "..."}.
    spawn: dict[str, Any] | None = None


@dataclass(frozen=True)
class Snapshot:
    journey_id: int
    definition: str
    step: str
    customer: str
    channel: str
    turn: int
    context: dict[str, Any]
    agent_config: dict[str, Any]

    @property
    def facts(self) -> dict[str, Any]:
        return self.context.get("facts", {})

    @property
    def results(self) -> dict[str, Any]:
        """Outcomes of the actions proposed in the current step, by action key."""
        return self.context.get("results", {})

    @property
    def reply(self) -> dict[str, Any] | None:
        """The customer's reply since the agent's last turn, if any."""
        return self.context.get("reply")

    @property
    def request(self) -> dict[str, Any]:
        """What the customer asked for when the journey started."""
        return self.context.get("request", {})

    @property
    def guidance(self) -> list[str]:
        """Notes people left for the agent (hand-back notes, rejection reasons)."""
        return self.context.get("guidance", [])

    def result(self, action: str) -> dict[str, Any] | None:
        return self.results.get(action)


class AgentAdapter(Protocol):
    def next_turn(self, snapshot: Snapshot) -> Turn: ...
