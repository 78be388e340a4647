"""The seam between the runtime and the policy engine.

The runtime asks ``decide(proposal)`` and nothing else. Which engine answers is a setting
(``HANDOFF["POLICY_ENGINE"]``), so ``journeys`` never imports ``review``. The engine is called
inside the transaction that holds the journey's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .models import ProposedAction


@dataclass(frozen=True)
class Decision:
    effect: str  # ProposedAction.Effect value
    rule: str  # the rule that produced it, as a person would name it
    explanation: str  # one sentence a compliance officer can read
    required_approvals: int = 0
    expires_at: datetime | None = None


class PolicyEngine(Protocol):
    def __call__(self, proposal: ProposedAction) -> Decision: ...


def allow_everything(proposal: ProposedAction) -> Decision:
    """The engine of a bank with no scopes configured: every action is allowed."""
    return Decision(
        effect="allow",
        rule="no policy engine configured",
        explanation=f"{proposal.action_type.name} allowed: no permission scopes are configured.",
    )


def decide(proposal: ProposedAction) -> Decision:
    engine: PolicyEngine = import_string(settings.HANDOFF["POLICY_ENGINE"])
    return engine(proposal)
