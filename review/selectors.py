"""Read-side queries of the review app, next to its services.

Views call these and hand the results to templates; template tags never query the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.utils import timezone

from console.polling import marker_stamp
from console.selectors import read_choices
from journeys.models import DefinitionVersion
from journeys.rights import Right

from .cases.access import cases_for, eligible_assignees, groups_for, may_annotate
from .cases.forms import FlagForm
from .models import Annotation, CaseGroup, ExceptionCase, Label


@dataclass
class JourneyReview:
    """What the exception workbench adds to a journey page: may the user annotate, the
    annotations by event, and the journey's recent exception cases."""

    may_annotate: bool = False
    by_event: dict[int, list[Annotation]] = field(default_factory=dict)
    cases: list[ExceptionCase] = field(default_factory=list)
    flag_form: Any = None  # "Flag for a second look", its labels read (the journey page only)


def journey_review(user: Any, journey: Any, *, with_cases: bool = True) -> JourneyReview:
    by_event: dict[int, list[Annotation]] = {}
    for annotation in (
        Annotation.objects.filter(journey=journey, event__isnull=False)
        .select_related("author")
        .prefetch_related("labels")
    ):
        by_event.setdefault(annotation.event_id, []).append(annotation)
    allowed = may_annotate(user, journey.definition)
    if not with_cases:
        return JourneyReview(may_annotate=allowed, by_event=by_event)
    cases = list(journey.exception_cases.order_by("-opened_at")[:20])
    return JourneyReview(
        may_annotate=allowed,
        by_event=by_event,
        cases=cases,
        flag_form=read_choices(FlagForm()) if allowed else None,
    )


# --- the exception workbench ------------------------------------------------------------------

GROUPS_PAGE_SIZE = 30


def workbench_cases(user: Any, definition: Any = None):
    """The cases the workbench counts: on the definitions ``user`` may view (one, if chosen)."""
    cases = cases_for(user)
    return cases.filter(journey__definition=definition) if definition is not None else cases


def workbench_marker(user: Any, definition: Any = None, now: datetime | None = None) -> str:
    """Changes exactly when the workbench may show something else: a case opened (count, newest
    id), a case resolved (resolved count, newest resolution), and each minute, so "last seen …
    ago" ages. Assigning or annotating a case changes nothing the workbench shows."""
    agg = workbench_cases(user, definition).aggregate(
        n=Count("pk"),
        newest=Max("pk"),
        resolved=Count("pk", filter=Q(status=ExceptionCase.Status.RESOLVED)),
        resolved_at=Max("resolved_at"),
    )
    stamp = int(agg["resolved_at"].timestamp() * 1_000_000) if agg["resolved_at"] else 0
    minute = int((now or timezone.now()).timestamp() // 60)
    return f"c{agg['n']:x}.{agg['newest'] or 0:x}-r{agg['resolved']:x}.{marker_stamp(stamp)}-m{minute:x}"


def workbench_page(user: Any, *, definition: Any = None, show_all: bool = False, valid: bool = True, page: Any = None):
    """The workbench's groups, largest first: by unresolved cases (or by all cases with
    ``show_all``), then by how recently the group was seen. Evaluated: the template only reads."""
    groups = groups_for(user).select_related("definition")
    if definition is not None:
        groups = groups.filter(definition=definition)
    if not valid:
        groups = groups.none()
    unresolved = ~Q(cases__status=ExceptionCase.Status.RESOLVED)
    groups = groups.annotate(
        open_count=Count("cases", filter=unresolved),
        total=Count("cases"),
        last_seen=Max("cases__opened_at"),
        last_open=Max("cases__opened_at", filter=unresolved),
    )
    groups = groups.filter(total__gt=0) if show_all else groups.filter(open_count__gt=0)
    order = ["-total", "-last_seen"] if show_all else ["-open_count", "-last_open"]
    result = Paginator(groups.order_by(*order, "pk"), GROUPS_PAGE_SIZE).get_page(page)
    result.object_list = with_step_titles(list(result.object_list))
    return result


def open_case_count(user: Any) -> int:
    return cases_for(user).unresolved().count()


def group_page(user: Any, group: CaseGroup) -> dict[str, Any]:
    """A group's cases (newest unresolved first, at most 200), their counts and annotations."""
    cases = (
        cases_for(user)
        .filter(group=group)
        .select_related("journey__version", "assignee", "resolved_by")
        .order_by("status", "-opened_at", "-pk")
    )
    rows = list(cases[:200])
    counts = cases.aggregate(n=Count("pk"), open=Count("pk", filter=~Q(status=ExceptionCase.Status.RESOLVED)))
    annotations = list(
        Annotation.objects.filter(case__group=group, case__in=cases)
        .select_related("author", "case")
        .prefetch_related("labels")[:50]
    )
    return {"cases": rows, "case_count": counts["n"], "open_count": counts["open"], "annotations": annotations}


def group_unresolved(user: Any, group: CaseGroup) -> list[ExceptionCase]:
    """The group's unresolved cases ``user`` may change (annotate right), for a group action."""
    return list(cases_for(user, Right.ANNOTATE).filter(group=group).unresolved().order_by("pk"))


def case_page(case: ExceptionCase) -> dict[str, Any]:
    """A case's events (newest first, as on the journey's timeline) and annotations."""
    return {
        "events": list(case.events.select_related("actor_user", "actor_agent").order_by("-id")),
        "annotations": list(case.annotations.select_related("author").prefetch_related("labels")),
    }


def event_annotations(event: Any) -> list[Annotation]:
    return list(event.annotations.select_related("author").prefetch_related("labels"))


def assignees(definition: Any) -> list[Any]:
    """Who a case of ``definition`` may be assigned to, evaluated for the form's choices."""
    return list(eligible_assignees(definition))


def labels_in_use() -> list[Label]:
    """The label taxonomy with how often each label was used, in-use labels first."""
    return list(Label.objects.annotate(uses=Count("annotations")).order_by("-is_active", "name"))


def label_or_none(pk: int) -> Label | None:
    return Label.objects.filter(pk=pk).first()


def active_labels() -> list[Label]:
    return list(Label.objects.filter(is_active=True).order_by("name"))


def with_step_titles(groups: list[CaseGroup]) -> list[CaseGroup]:
    """Attach each group's current definition version, for every group in one query."""
    ids = {group.definition_id for group in groups}
    versions = {
        version.definition_id: version
        for version in DefinitionVersion.objects.filter(definition_id__in=ids)
        .order_by("definition_id", "-number")
        .distinct("definition_id")
    }
    return [group.with_version(versions.get(group.definition_id)) for group in groups]
