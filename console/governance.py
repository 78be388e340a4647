"""The governance changes page: admins see the changes that wait for a second admin, with the
state before and after and (for rules) how recent proposals or counters look under the change,
and approve or reject them. The decision itself is ``review.services.governance``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from review.access import may_edit_scopes
from review.models import GovernanceChange
from review.selectors import (
    governance_change_or_none,
    governance_page,
    limit_change_preview,
    scope_change_preview,
)
from review.services.governance import GovernanceError, governance_approve, governance_reject

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


def _change_or_404(user: Any, pk: int) -> GovernanceChange:
    if not may_see_governance(user):
        raise Http404("No such page.")
    change = governance_change_or_none(_kinds_for(user), pk)
    if change is None:
        raise Http404("No such change.")
    return change


@require_GET
@login_required
def governance_list(request: HttpRequest) -> HttpResponse:
    if not may_see_governance(request.user):
        raise Http404("No such page.")
    context = governance_page(_kinds_for(request.user), timezone.now())
    return render(request, "console/governance.html", context)


@require_GET
@login_required
def governance_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = _change_or_404(request.user, pk)
    context = {
        "change": change,
        "fields": change.changed_fields() if change.kind not in (Kind.GRANT, Kind.ORG_GRANT) else [],
        "preview": scope_change_preview(change) if change.kind == Kind.SCOPE and change.is_pending else None,
        "limit_rows": limit_change_preview(change) if change.kind == Kind.LIMIT and change.is_pending else [],
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
