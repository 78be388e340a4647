"""Read-side queries of the review app, next to its services.

Views call these and hand the results to templates; template tags never query the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Case, Count, F, Max, Q, QuerySet, Sum, When
from django.http import QueryDict
from django.utils import timezone

from console.polling import marker_stamp
from console.selectors import read_choices
from journeys.access import definitions_for
from journeys.models import DefinitionVersion, ProposedAction
from journeys.rights import Right
from journeys.selectors import with_transitions

from .access import (
    decidable_proposals_for,
    decision_limit_for,
    may_receive_escalations,
    samples_for,
    samples_visible_to,
)
from .briefs import decision_brief, with_brief
from .cases.access import cases_for, eligible_assignees, groups_for, may_annotate
from .cases.forms import FlagForm
from .forms import ScopeForm
from .models import (
    Annotation,
    CaseGroup,
    CumulativeLimit,
    ExceptionCase,
    GovernanceChange,
    Label,
    LimitUsage,
    PermissionScope,
    ScopeChange,
)
from .policy import judge, proposer_user_id, winning_scope
from .services.governance import pending_changes


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


# --- the approval queue ---------------------------------------------------------------------


def pending_for(user: Any):
    """The pending proposals ``user`` may decide, escalated first, then by expiry and age."""
    return with_brief(
        decidable_proposals_for(user)
        .pending()
        .select_related(
            "action_type",
            "journey__definition",
            "journey__version",
            "proposed_by_agent",
            "proposed_by_user",
            "approval_request__escalate_to",
            "claimed_by",
        )
        .annotate(
            approvals_given=Count("approvals", filter=Q(approvals__dropped_at__isnull=True)),
            # Escalated items first: their first window already ran out.
            escalated_rank=Case(When(approval_request__escalated_at__isnull=False, then=0), default=1),
        )
        .order_by("escalated_rank", F("expires_at").asc(nulls_last=True), "created_at", "pk")
    )


def no_pending(pending):
    """The queue emptied (an invalid filter shows nothing)."""
    return pending.none()


def queue_fingerprint(pending) -> str:
    """A cheap cursor for polling: changes when an item arrives, leaves or gets an approval."""
    agg = pending.order_by().aggregate(
        n=Count("pk", distinct=True),
        last=Max("pk"),
        approvals=Max("approvals__pk"),
        expiry=Max("expires_at"),
        claims=Count("pk", distinct=True, filter=Q(claimed_by__isnull=False)),
        claimed=Max("claimed_until"),
    )
    return hashlib.sha1(repr(sorted(agg.items())).encode()).hexdigest()[:16]


def queue_rows(user: Any, pending) -> list[dict[str, Any]]:
    """The first 200 queue items with what each row shows: limit, claim, escalation, brief."""
    limits: dict[int, Decimal | None] = {}
    approvable = set(definitions_for(user, Right.APPROVE).values_list("pk", flat=True))
    viewable = set(definitions_for(user, Right.VIEW).values_list("pk", flat=True))
    rows = []
    for proposal in pending[:200]:
        definition = proposal.journey.definition
        delegated = definition.pk not in approvable  # in the queue only through an escalation
        if delegated:
            limit = decision_limit_for(user, proposal)
        else:
            if definition.pk not in limits:
                limits[definition.pk] = decision_limit_for(user, proposal)
            limit = limits[definition.pk]
        amount = proposal.amount
        with_transitions(user, [proposal])
        holder = proposal.claim_holder()
        rows.append(
            {
                "proposal": proposal,
                "claimed_by_me": holder is not None and holder.pk == user.pk,
                "claimed_by_other": holder if holder is not None and holder.pk != user.pk else None,
                "own": proposer_user_id(proposal) == user.pk,
                "step_title": proposal.journey.version.step_title(proposal.step),
                "limit": limit,
                "over_limit": amount is not None and (limit is None or amount > limit),
                "escalated": bool(
                    getattr(proposal, "approval_request", None) and proposal.approval_request.escalated_at
                ),
                "delegated": delegated,
                # The journey page follows view grants; a delegate decides from the queue alone,
                # so the item carries what the decision needs.
                "may_open": definition.pk in viewable,
                "brief": decision_brief(proposal),
            }
        )
    return rows


def may_approve_somewhere(user: Any) -> bool:
    return definitions_for(user, Right.APPROVE).exists() or may_receive_escalations(user)


def may_open_journeys_of(user: Any, definition_id: int) -> bool:
    """Whether ``user`` may open journeys of the definition (view grants)."""
    return definitions_for(user, Right.VIEW).filter(pk=definition_id).exists()


def decidable_ids(user: Any, ids: list[int]) -> set[int]:
    """Which of ``ids`` are proposals ``user`` may decide."""
    return set(decidable_proposals_for(user).filter(pk__in=ids).values_list("pk", flat=True))


# --- scopes -------------------------------------------------------------------------------------


def scopes_page(user: Any, *, may_edit: bool) -> dict[str, Any]:
    """The scope rules, cumulative limits, recent changes and (for an editor) pending changes."""
    return {
        "scopes": list(PermissionScope.objects.select_related("definition", "agent", "action_type", "escalate_to")),
        "limits": list(CumulativeLimit.objects.select_related("definition", "action_type")),
        "history": list(ScopeChange.objects.select_related("actor")[:30]),
        "pending": list(pending_changes().exclude(kind="grant").select_related("maker")) if may_edit else [],
    }


def scope_or_none(pk: int) -> PermissionScope | None:
    return PermissionScope.objects.filter(pk=pk).first()


def scope_fresh(scope: PermissionScope) -> PermissionScope:
    """The scope as stored, before a form changes the instance."""
    return PermissionScope.objects.get(pk=scope.pk)


def limit_or_none(pk: int) -> CumulativeLimit | None:
    return CumulativeLimit.objects.filter(pk=pk).first()


def limit_fresh(limit: CumulativeLimit) -> CumulativeLimit:
    return CumulativeLimit.objects.get(pk=limit.pk)


def rule_history(target: str, target_id: int) -> list[ScopeChange]:
    """The recorded changes of one scope or limit (``ScopeChange.Target``)."""
    return list(ScopeChange.objects.filter(target=target, target_id=target_id))


def preview_rows(candidate: PermissionScope, original: PermissionScope | None) -> dict[str, Any]:
    """How the last N real proposals would be decided with ``candidate`` in place of ``original``
    (scope rules only: cumulative limits depend on the moment and are not replayed)."""
    enabled = [
        s
        for s in PermissionScope.objects.enabled().select_related("escalate_to")
        if not candidate.pk or s.pk != candidate.pk
    ]
    edited = [*enabled, candidate] if candidate.is_enabled else enabled
    current = list(PermissionScope.objects.enabled())
    scope_filter = Q()
    for rule in filter(None, [candidate, original]):
        part = Q()
        if rule.action_type_id:
            part &= Q(action_type_id=rule.action_type_id)
        if rule.definition_id:
            part &= Q(journey__definition_id=rule.definition_id)
        scope_filter |= part
    n = int(settings.HANDOFF.get("SCOPE_PREVIEW_PROPOSALS", 50))
    proposals = (
        ProposedAction.objects.exclude(status=ProposedAction.Status.PROPOSED)
        .filter(scope_filter)
        .select_related("action_type", "journey__definition", "proposed_by_agent")
        .order_by("-created_at", "-pk")[:n]
    )
    rows = []
    for proposal in proposals:
        now_scope = winning_scope(proposal, proposal.params, current)
        new = judge(proposal, scopes=edited, limits=False).decision
        now_effect = now_scope.effect if now_scope else ProposedAction.Effect.DENY
        labels = ProposedAction.Effect
        rows.append(
            {
                "proposal": proposal,
                "now_effect": now_effect,
                "now_label": labels(now_effect).label,
                "new_label": labels(new.effect).label,
                "now_rule": now_scope.name if now_scope else "no matching rule",
                "new": new,
                "changed": new.effect != now_effect,
            }
        )
    return {"rows": rows, "changed": sum(r["changed"] for r in rows), "n": n}


# --- after-the-fact review ----------------------------------------------------------------------


def samples_page(user: Any, *, show: str) -> dict[str, Any]:
    """The review samples ``user`` may see (the open ones with ``show="open"``), at most 200, and
    which of them the user may mark."""
    samples = samples_visible_to(user).select_related(
        "proposal__action_type", "proposal__journey__definition", "proposal__proposed_by_agent", "reviewed_by"
    )
    if show == "open":
        samples = samples.filter(verdict="")
    return {
        "samples": list(samples[:200]),
        "markable": set(samples_for(user, Right.APPROVE).values_list("pk", flat=True)),
    }


def markable_sample(user: Any, pk: int):
    """The sample ``user`` may mark, or None."""
    return samples_for(user, Right.APPROVE).filter(pk=pk).first()


# --- governance changes -------------------------------------------------------------------------


def governance_changes(kinds: list[str]) -> QuerySet[GovernanceChange]:
    """The governance changes of the given kinds, with their maker and checker."""
    return GovernanceChange.objects.filter(kind__in=kinds).select_related("maker", "checker")


def governance_page(kinds: list[str], now: datetime) -> dict[str, Any]:
    """The changes still open at ``now`` and the last 30 decided, of the given kinds."""
    changes = governance_changes(kinds)
    return {
        "pending": list(changes.filter(status=GovernanceChange.Status.PENDING, expires_at__gt=now)),
        "decided": list(changes.exclude(status=GovernanceChange.Status.PENDING)[:30]),
    }


def governance_change_or_none(kinds: list[str], pk: int) -> GovernanceChange | None:
    return governance_changes(kinds).filter(pk=pk).first()


def scope_change_preview(change: GovernanceChange) -> dict[str, Any] | None:
    """How recent real proposals would be decided with the requested scope in place."""
    original = PermissionScope.objects.filter(pk=change.target_id).first() if change.target_id else None
    if change.target_id and original is None:
        return None
    candidate = PermissionScope.objects.get(pk=change.target_id) if original else PermissionScope()
    if "enabled" in change.payload:
        candidate.is_enabled = bool(change.payload["enabled"])
    else:
        data = QueryDict(mutable=True)
        for key, values in change.payload.get("form", {}).items():
            data.setlist(key, values if isinstance(values, list) else [values])
        form = ScopeForm(data, instance=candidate)
        if not form.is_valid():
            return None
        candidate = form.save(commit=False)
    return preview_rows(candidate, original)


def limit_change_preview(change: GovernanceChange) -> list[dict[str, Any]]:
    """Per subject the limit counts now: what is used in the window, and whether it is over the
    maximum before and after the change (a disabled limit is over nothing)."""
    limit = CumulativeLimit.objects.filter(pk=change.target_id).first() if change.target_id else None
    if limit is None or not change.before or not change.after:
        return []
    rows = []
    window = max(int(change.before["window_minutes"]), int(change.after["window_minutes"]))
    since = timezone.now() - timedelta(minutes=window)
    used = (
        LimitUsage.objects.filter(counter__limit=limit, at__gte=since)
        .values("counter__subject_key")
        .annotate(total=Sum("quantity"))
        .order_by("-total")[:20]
    )
    for row in used:
        total = row["total"] or Decimal(0)

        def over(state: dict[str, Any], total: Decimal = total) -> bool:
            return bool(state["is_enabled"]) and total >= Decimal(state["maximum"])

        rows.append(
            {
                "subject": row["counter__subject_key"],
                "used": total,
                "over_before": over(change.before),
                "over_after": over(change.after),
            }
        )
    return rows
