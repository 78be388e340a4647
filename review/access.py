"""Access helpers for proposals and review samples, built on ``journeys.access``.

A list starts from ``proposals_for``; an object view fetches through ``get_proposal_for_user``
(404 for a proposal on a definition the user holds no such permission on).
"""

from __future__ import annotations

from django.http import Http404

from journeys.access import definitions_for
from journeys.models import ProposedAction

from .models import ReviewSample


def proposals_for(user, perm: str = "approve"):
    return ProposedAction.objects.filter(journey__definition__in=definitions_for(user, perm).values("pk"))


def get_proposal_for_user(user, pk: int, perm: str = "approve") -> ProposedAction:
    proposal = (
        proposals_for(user, perm)
        .select_related(
            "action_type",
            "journey__definition",
            "journey__version",
            "proposed_by_agent",
            "proposed_by_user",
            "decided_by",
        )
        .filter(pk=pk)
        .first()
    )
    if proposal is None:
        raise Http404("No such action.")
    return proposal


def samples_for(user, perm: str = "approve"):
    return ReviewSample.objects.filter(proposal__journey__definition__in=definitions_for(user, perm).values("pk"))


def samples_visible_to(user):
    """Samples a user may read: on definitions they approve on (and may mark) or audit."""
    definitions = (definitions_for(user, "approve") | definitions_for(user, "audit")).values("pk")
    return ReviewSample.objects.filter(proposal__journey__definition__in=definitions)


def may_edit_scopes(user) -> bool:
    """Scopes are the bank's policy: only admins (staff or superusers) change them."""
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def may_view_scopes(user) -> bool:
    """Admins, and auditors (read-only: compliance reviews the rules)."""
    return may_edit_scopes(user) or definitions_for(user, "audit").exists()
