"""Access helpers for proposals and review samples, built on ``journeys.access``.

A list starts from ``proposals_for``; an object view fetches through ``get_proposal_for_user``
(404 for a proposal on a definition the user holds no such permission on).

Deciding is the one exception to "grants on the definition": a pending proposal whose approval
window ran out and that was escalated to a team may be decided by that team's members, for that
one item only (``decidable_proposals_for``). The delegation grants nothing else: not the journey
page, not the definition's other proposals, and it ends when the proposal leaves pending.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AnonymousUser, Group
from django.db.models import Q
from django.http import Http404

from journeys.access import approval_limit_for, definitions_for
from journeys.models import ApprovalLimit, ProposedAction
from journeys.rights import Right

from .models import ApprovalRequest, PermissionScope, ReviewSample
from .models.scopes import OnTimeout


def may_manage_teams(user) -> bool:
    """Team admins: superusers, and staff who hold Django's model permission to change groups.
    They manage teams, members and grants, and decide grant changes on the governance page."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or (user.is_staff and user.has_perm("auth.change_group"))


def proposals_for(user, right: Right = Right.APPROVE):
    return ProposedAction.objects.filter(journey__definition__in=definitions_for(user, right).values("pk"))


def escalated_to_user(user):
    """Pending proposals escalated to one of the user's teams (the delegated items)."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return ProposedAction.objects.none()
    return ProposedAction.objects.pending().filter(
        approval_request__escalated_at__isnull=False, approval_request__escalate_to__user=user
    )


def decidable_proposals_for(user):
    """What a user may decide: proposals on definitions they approve on, plus the pending
    proposals escalated to one of their teams."""
    standing = Q(journey__definition__in=definitions_for(user, Right.APPROVE).values("pk"))
    return ProposedAction.objects.filter(standing | Q(pk__in=escalated_to_user(user).values("pk")))


def may_receive_escalations(user) -> bool:
    """Whether the user's teams are named as an escalation target, or hold an escalated item
    right now: such a person needs the approval queue even without a standing approve grant."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return False
    named = PermissionScope.objects.enabled().filter(on_timeout=OnTimeout.ESCALATE, escalate_to__user=user)
    return named.exists() or escalated_to_user(user).exists()


def escalation_team_for(user, proposal: ProposedAction) -> Group | None:
    """The user's team a pending ``proposal`` was escalated to, if any."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return None
    if proposal.status != ProposedAction.Status.PENDING:
        return None
    request = (
        ApprovalRequest.objects.filter(proposal_id=proposal.pk, escalated_at__isnull=False, escalate_to__user=user)
        .select_related("escalate_to")
        .first()
    )
    return request.escalate_to if request else None


def decision_limit_for(user, proposal: ProposedAction) -> Decimal | None:
    """The highest amount ``user`` may approve on ``proposal``: their standing limit on its
    definition, or, on an item escalated to their team, that team's ``ApprovalLimit`` on the
    definition (none: ``Decimal(0)``, only actions without an amount). None: may not decide."""
    definition = proposal.journey.definition
    standing = approval_limit_for(user, definition)
    team = escalation_team_for(user, proposal)
    if team is None:
        return standing
    delegated = ApprovalLimit.objects.filter(team=team, definition=definition).values_list("limit", flat=True).first()
    delegated = delegated if delegated is not None else Decimal(0)
    return delegated if standing is None else max(standing, delegated)


def get_decidable_proposal(user, pk: int) -> ProposedAction:
    """A proposal the user may decide (standing grant or escalation), else 404."""
    return _fetch(decidable_proposals_for(user), pk)


def get_proposal_for_user(user, pk: int, right: Right = Right.APPROVE) -> ProposedAction:
    return _fetch(proposals_for(user, right), pk)


def _fetch(qs, pk: int) -> ProposedAction:
    proposal = (
        qs.select_related(
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


def samples_for(user, right: Right = Right.APPROVE):
    return ReviewSample.objects.filter(proposal__journey__definition__in=definitions_for(user, right).values("pk"))


def samples_visible_to(user):
    """Samples a user may read: on definitions they approve on (and may mark) or audit."""
    definitions = (definitions_for(user, Right.APPROVE) | definitions_for(user, Right.AUDIT)).values("pk")
    return ReviewSample.objects.filter(proposal__journey__definition__in=definitions)


def may_edit_scopes(user) -> bool:
    """Scopes are the bank's policy: only admins (staff or superusers) change them."""
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def may_view_scopes(user) -> bool:
    """Admins, and auditors (read-only: compliance reviews the rules)."""
    return may_edit_scopes(user) or definitions_for(user, Right.AUDIT).exists()
