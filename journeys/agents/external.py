"""Agents that run elsewhere and talk to Handoff's API (``Agent.Kind.EXTERNAL``).

The runtime never asks such an agent anything: its turn only parks the journey until the
customer writes or the agent calls the API. Approved proposals are still executed by the
runtime (a turn executes them before asking the agent), exactly as for the scripted agent.

``agent_propose`` is the agent's half of the propose path that the runtime's ``_apply`` and a
person's ``person_propose`` already walk: the same ``proposal_create`` (parameter validation,
policy engine, events, audit), the same executor, the same fallback on a denial.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..lifecycle import journey as journey_lifecycle
from ..models import Agent, Journey, ProposedAction
from ..services import (
    JourneyError,
    journey_hand_to_person,
    lock_journey,
    proposal_create,
    proposal_execute,
)
from .base import Snapshot, Turn


class ExternalAgent:
    """The runtime's view of an external agent: nothing to compute, wait for the API."""

    def next_turn(self, snapshot: Snapshot) -> Turn:
        return Turn(then="wait_customer", note="")


class AgentRefused(JourneyError):
    """The journey is not the agent's to act on now (taken over, paused, finished…).

    ``reason`` is a short machine-readable word for the API's 409 answer.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@transaction.atomic
def agent_propose(
    *,
    journey_id: int,
    agent: Agent,
    action: str,
    params: dict[str, Any],
    explanation: str,
    key: str,
    confidence: float | None = None,
) -> ProposedAction:
    """Propose an action as the journey's (external) agent and decide it at once.

    Refused with ``AgentRefused`` — nothing written — while a person controls the journey, its
    agents are paused, or it is not live. ``key`` (already scoped by the caller) makes a repeat
    return the proposal already made. Raises ``ActionParamsError`` for bad parameters.
    """
    from ..runtime import agents_may_run  # the runtime's gate: same pause rules as a turn

    journey = lock_journey(journey_id)
    if journey is None:
        raise AgentRefused("No such journey.", reason="not_found")
    existing = ProposedAction.objects.filter(idempotency_key=key, journey=journey).first()
    if existing is not None:
        return existing
    if not journey.is_live:
        raise AgentRefused(f"J-{journey.pk} is {journey.get_status_display().lower()}.", reason="finished")
    if journey.agent_id != agent.pk:
        raise AgentRefused(f"J-{journey.pk} is run by another agent.", reason="not_your_journey")
    if journey.controller_user_id:
        raise AgentRefused(
            f"{journey.controller_user.get_username()} has taken over J-{journey.pk}; the agent may not act.",
            reason="taken_over",
        )
    if journey.status == Journey.Status.HUMAN:
        raise AgentRefused(
            f"J-{journey.pk} is with a person ({journey.needs_person_reason or 'fallback'}).", reason="with_person"
        )
    refusal = agents_may_run(journey)
    if refusal == "paused":
        raise AgentRefused(f"Agents on {journey.definition.name} are paused.", reason="paused")
    if refusal:
        raise AgentRefused(f"{agent.name} is disabled.", reason="agent_disabled")
    proposal = proposal_create(
        journey,
        action=action,
        params=params,
        explanation=explanation,
        key=key,
        agent=agent,
        confidence=confidence,
    )
    if proposal.status == ProposedAction.Status.AUTO_APPROVED:
        proposal_execute(proposal)
    elif proposal.status == ProposedAction.Status.DENIED:
        journey_hand_to_person(
            journey,
            reason=f"Policy denied {proposal.action_type.name}: {proposal.decision_explanation}",
            exception_kind="policy_denied",
            data={"proposal": proposal.pk, "rule": proposal.decision_rule},
        )
    elif proposal.status == ProposedAction.Status.PENDING and journey.status == Journey.Status.RUNNING:
        journey_lifecycle.wait_for_approval(journey)  # as the runtime's turn does
    proposal.refresh_from_db()
    return proposal
