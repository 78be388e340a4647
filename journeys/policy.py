"""The seam between the runtime and the policy engine: a judgement and its side effects.

``decide(proposal)`` is a pure judgement: it returns a ``Decision`` and writes nothing (it may
lock the counter rows it read, so a later ``apply`` in the same transaction counts against what
it saw). ``apply(proposal, decision, outcome=…)`` carries out the engine's side effects of an
outcome — count an auto-approved or approved proposal against its cumulative limits, open the
approval request of a pending one, sample auto-approved actions — and is called by the
lifecycle transition that reached that outcome (``journeys.lifecycle.proposal``), never by the
engine itself. Which engine answers is a setting (``HANDOFF["POLICY_ENGINE"]`` and
``HANDOFF["POLICY_EFFECTS"]``), so ``journeys`` never imports ``review``. Both are called inside
the transaction that holds the journey's row lock.
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


class PolicyEffects(Protocol):
    def __call__(self, proposal: ProposedAction, decision: Decision, *, outcome: str) -> None: ...


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


def no_effects(proposal: ProposedAction, decision: Decision, *, outcome: str) -> None:
    """The effects of an engine that keeps no counters and opens no requests."""


def apply(proposal: ProposedAction, decision: Decision, *, outcome: str) -> None:
    """Carry out the engine's side effects of ``outcome`` (a ``ProposedAction.Status``)."""
    effects: PolicyEffects = import_string(settings.HANDOFF.get("POLICY_EFFECTS", "journeys.policy.no_effects"))
    effects(proposal, decision, outcome=outcome)
