"""The governance changes page: admins see the changes that wait for a second admin, with the
state before and after and (for rules) how recent proposals or counters look under the change,
and approve or reject them. The decision itself is ``review.services.governance``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from review.access import may_edit_scopes
from review.forms import ScopeForm
from review.models import CumulativeLimit, GovernanceChange, LimitUsage, PermissionScope
from review.services.governance import GovernanceError, governance_approve, governance_reject
from review.views import preview_rows

from .teams import may_manage_teams

Kind = GovernanceChange.Kind


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=1000, required=False, strip=True)


def may_see_governance(user: Any) -> bool:
    return may_edit_scopes(user) or may_manage_teams(user)


def _kinds_for(user: Any) -> list[str]:
    """Rules are decided by scope admins, grants by team admins."""
    kinds = []
    if may_edit_scopes(user):
        kinds += [Kind.SCOPE, Kind.LIMIT]
    if may_manage_teams(user):
        kinds += [Kind.GRANT, Kind.ORG_GRANT]
    return kinds


def changes_for(user: Any) -> QuerySet[GovernanceChange]:
    """The changes ``user`` may see and decide: those of the kinds they administer."""
    return GovernanceChange.objects.filter(kind__in=_kinds_for(user)).select_related("maker", "checker")


def _change_or_404(user: Any, pk: int) -> GovernanceChange:
    if not may_see_governance(user):
        raise Http404("No such page.")
    change = changes_for(user).filter(pk=pk).first()
    if change is None:
        raise Http404("No such change.")
    return change


def _scope_preview(change: GovernanceChange) -> dict[str, Any] | None:
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


def _limit_preview(change: GovernanceChange) -> list[dict[str, Any]]:
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


@require_GET
@login_required
def governance_list(request: HttpRequest) -> HttpResponse:
    if not may_see_governance(request.user):
        raise Http404("No such page.")
    now = timezone.now()
    changes = changes_for(request.user)
    context = {
        "pending": changes.filter(status=GovernanceChange.Status.PENDING, expires_at__gt=now),
        "decided": changes.exclude(status=GovernanceChange.Status.PENDING)[:30],
    }
    return render(request, "console/governance.html", context)


@require_GET
@login_required
def governance_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = _change_or_404(request.user, pk)
    context = {
        "change": change,
        "fields": change.changed_fields() if change.kind not in (Kind.GRANT, Kind.ORG_GRANT) else [],
        "preview": _scope_preview(change) if change.kind == Kind.SCOPE and change.is_pending else None,
        "limit_rows": _limit_preview(change) if change.kind == Kind.LIMIT and change.is_pending else [],
        "is_maker": change.maker_id == request.user.pk,
        "open": change.is_pending and change.expires_at > timezone.now(),
        "form": DecisionForm(),
    }
    return render(request, "console/governance_detail.html", context)


def _decide(request: HttpRequest, pk: int, *, approve: bool) -> HttpResponse:
    change = _change_or_404(request.user, pk)
    form = DecisionForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        if approve:
            governance_approve(change_id=change.pk, user=request.user, reason=reason)
            messages.success(request, f"Approved and applied: {change.subject}.")
        else:
            governance_reject(change_id=change.pk, user=request.user, reason=reason)
            messages.success(request, f"Rejected: {change.subject}.")
    except GovernanceError as exc:
        messages.error(request, str(exc))
        return redirect("governance_detail", pk=change.pk)
    return redirect("governance_list")


@require_POST
@login_required
def governance_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=True)


@require_POST
@login_required
def governance_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=False)
