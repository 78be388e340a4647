"""Access helpers: least privilege by construction.

Every list starts from ``definitions_for`` / ``journeys_for``; every object view fetches through
``get_journey_for_user`` (404 for anything the user may not see). Permissions are
django-guardian object permissions on ``JourneyDefinition``, granted to teams (groups).
Model-wide permissions are deliberately ignored (``accept_global_perms=False``): a stray global
grant must not open every journey. Inactive users see nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from .models import Journey, JourneyDefinition

PERMS = {
    "view": "journeys.view_journeys",
    "take_over": "journeys.take_over",
    "approve": "journeys.approve_actions",
    "annotate": "journeys.annotate",
    "audit": "journeys.audit",
    "pause": "journeys.pause_agents",
}


def definitions_for(user, perm: str = "view"):
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return JourneyDefinition.objects.none()
    return get_objects_for_user(
        user, PERMS[perm], klass=JourneyDefinition, accept_global_perms=False, with_superuser=True
    )


def journeys_for(user, perm: str = "view"):
    return Journey.objects.filter(definition__in=definitions_for(user, perm).values("pk"))


def user_may(user, perm: str, definition: JourneyDefinition) -> bool:
    return definitions_for(user, perm).filter(pk=definition.pk).exists()


def get_journey_for_user(user, pk: int, perm: str = "view", *, lock: bool = False) -> Journey:
    qs = journeys_for(user, perm).select_related("definition", "version", "agent", "controller_user")
    if lock:
        qs = qs.select_for_update(of=("self",))
    journey = qs.filter(pk=pk).first()
    if journey is None:
        raise Http404("No such journey.")
    return journey
