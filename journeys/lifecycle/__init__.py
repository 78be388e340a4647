"""Lifecycles: the only code that changes the state of a journey or a proposed action.

``journeys.lifecycle.journey`` and ``journeys.lifecycle.proposal`` hold the named transitions;
``transitions_for(user, obj)`` says which of the person-facing ones ``user`` may take now, so
pages derive their buttons from the same rules the services enforce.
"""

from __future__ import annotations

from typing import Any

from ..errors import IllegalTransition
from ..models import Journey, ProposedAction
from . import journey, proposal


def transitions_for(user: Any, obj: Journey | ProposedAction) -> set[str]:
    if isinstance(obj, Journey):
        return journey.transitions_for(user, obj)
    return proposal.transitions_for(user, obj)


__all__ = ["IllegalTransition", "journey", "proposal", "transitions_for"]
