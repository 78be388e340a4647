"""Access helpers: least privilege by construction.

Every list starts from ``definitions_for`` / ``journeys_for``; every object view fetches through
``get_journey_for_user`` (404 for anything the user may not see). Permissions are
django-guardian object permissions on ``JourneyDefinition``, granted to teams (groups).
Model-wide permissions are deliberately ignored (``accept_global_perms=False``): a stray global
grant must not open every journey. Inactive users see nothing.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from .models import ApprovalLimit, Journey, JourneyDefinition
from .rights import PERMS, Right


def permission_of(right: Right) -> str:
    """The guardian permission behind ``right``; anything but a ``Right`` member is refused."""
    if not isinstance(right, Right):
        raise TypeError(f"Access helpers take a journeys.rights.Right member, not {right!r}.")
    if right not in PERMS:
        raise ValueError(f"{right.key} is a sensitive-data grant: ask review.audit.access.may_unmask.")
    return PERMS[right]


def definitions_for(user, right: Right = Right.VIEW):
    perm = permission_of(right)
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return JourneyDefinition.objects.none()
    return get_objects_for_user(user, perm, klass=JourneyDefinition, accept_global_perms=False, with_superuser=True)


def journeys_for(user, right: Right = Right.VIEW):
    return Journey.objects.filter(definition__in=definitions_for(user, right).values("pk"))


def user_may(user, right: Right, definition: JourneyDefinition) -> bool:
    return definitions_for(user, right).filter(pk=definition.pk).exists()


def get_journey_for_user(user, pk: int, right: Right = Right.VIEW, *, lock: bool = False) -> Journey:
    qs = journeys_for(user, right).select_related("definition", "version", "agent", "controller_user")
    if lock:
        qs = qs.select_for_update(of=("self",))
    journey = qs.filter(pk=pk).first()
    if journey is None:
        raise Http404("No such journey.")
    return journey


def approval_limit_for(user, definition: JourneyDefinition) -> Decimal | None:
    """The highest amount ``user`` may approve on ``definition``: the best limit among the teams
    that hold ``approve_actions`` on it. None when the user may not approve there at all;
    ``Decimal(0)`` when they may approve only actions without an amount."""
    if not user_may(user, Right.APPROVE, definition):
        return None
    limits = ApprovalLimit.objects.filter(definition=definition, team__in=user.groups.all()).values_list(
        "limit", flat=True
    )
    return max(limits, default=Decimal(0))


def perms_held(user) -> frozenset[Right]:
    """The rights (object permissions) the user holds on at least one definition, in one query.

    For menus and landing pages, which ask "may this person do X anywhere?" many times per page.
    """
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(PERMS)
    from .models import DefinitionGroupPermission, DefinitionUserPermission

    by_group = DefinitionGroupPermission.objects.filter(group__user=user).values_list("permission__codename")
    by_user = DefinitionUserPermission.objects.filter(user=user).values_list("permission__codename")
    codenames = {row[0] for row in by_group.union(by_user)}
    return frozenset(right for right in PERMS if right.codename in codenames)


def may_see_any(user, right: Right = Right.VIEW) -> bool:
    """Whether ``user`` holds ``right`` on at least one definition."""
    return definitions_for(user, right).exists()
