"""Domain errors of the journey app; their messages are for people."""

from __future__ import annotations


class JourneyError(Exception):
    """A request that the journey's state does not allow; the message is for people."""


class IllegalTransition(JourneyError):
    """A lifecycle transition from a state that does not allow it (or a race that was lost).

    Raised by ``journeys.lifecycle`` when the conditional UPDATE finds the row no longer in one
    of the transition's source states.
    """
