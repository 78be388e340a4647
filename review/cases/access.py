"""Who may see and change exception cases: everything starts from ``journeys.access``.

Seeing a case needs ``view`` on its journey's definition (anything else is a 404); changing it
(annotate, assign, resolve, flag) needs ``annotate`` there. Editing the label taxonomy is for
admins: superusers or holders of the model permission ``review.change_label``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404
from guardian.shortcuts import get_users_with_perms

from journeys.access import definitions_for, journeys_for, user_may
from journeys.models import Event, JourneyDefinition
from journeys.rights import Right

from ..models import CaseGroup, ExceptionCase


def cases_for(user, right: Right = Right.VIEW) -> QuerySet[ExceptionCase]:
    return ExceptionCase.objects.filter(journey__definition__in=definitions_for(user, right).values("pk"))


def groups_for(user, right: Right = Right.VIEW) -> QuerySet[CaseGroup]:
    return CaseGroup.objects.filter(definition__in=definitions_for(user, right).values("pk"))


def get_case_for_user(user, pk: int) -> ExceptionCase:
    case = (
        cases_for(user)
        .select_related(
            "journey__definition",
            "journey__version",
            "group__definition",
            "assignee",
            "resolved_by",
            "trigger_event",
        )
        .filter(pk=pk)
        .first()
    )
    if case is None:
        raise Http404("No such case.")
    return case


def get_group_for_user(user, pk: int) -> CaseGroup:
    group = groups_for(user).select_related("definition").filter(pk=pk).first()
    if group is None:
        raise Http404("No such exception group.")
    return group


def get_event_for_user(user, pk: int) -> Event:
    event = (
        Event.objects.select_related("journey__definition", "actor_user", "actor_agent")
        .filter(pk=pk, journey__in=journeys_for(user).values("pk"))
        .first()
    )
    if event is None:
        raise Http404("No such event.")
    return event


def may_annotate(user, definition: JourneyDefinition) -> bool:
    return user_may(user, Right.ANNOTATE, definition)


def may_edit_labels(user) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("review.change_label")))


def eligible_assignees(definition: JourneyDefinition) -> QuerySet:
    """Active people who may work cases of ``definition`` (hold ``annotate`` on it)."""
    holders = get_users_with_perms(
        definition,
        only_with_perms_in=[Right.ANNOTATE.codename],
        with_group_users=True,
        with_superusers=False,
    )
    return get_user_model().objects.filter(Q(pk__in=[u.pk for u in holders]), is_active=True).order_by("username")
