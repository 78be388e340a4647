"""The review pages: the approval queue, decisions, the scope editor and after-the-fact review.

Every view reaches its objects through ``review.access`` / ``journeys.access``: the queue is the
user's permitted queryset, a proposal on a definition the user may not approve is a 404 unless
it was escalated to one of the user's teams (then the queue, approve, reject and edit accept
that one item; the journey page stays governed by view grants).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from console.navigation import menu_page
from console.polling import live_poll
from console.selectors import read_choices
from journeys.actions import ACTION_SPECS
from journeys.models import ProposedAction

from . import selectors, services
from .access import (
    decision_limit_for,
    get_decidable_proposal,
    may_edit_scopes,
    may_view_scopes,
)
from .audit.access import may_unmask
from .audit.masking import is_sensitive, keep_masked, masked_initial
from .audit.services import proposal_param_unmask
from .briefs import decision_brief
from .forms import (
    BatchForm,
    LimitForm,
    QueueFilter,
    RejectForm,
    SampleMarkForm,
    ScopeForm,
    ToggleForm,
    edit_form_class,
)
from .models import CumulativeLimit, PermissionScope, ScopeChange
from .models.scopes import OnTimeout
from .selectors import preview_rows
from .services.governance import rule_submit, rule_toggle_submit


class ReviewRequest(HttpRequest):
    user: User
    htmx: HtmxDetails


def _back(request: ReviewRequest, default: str = "review_queue") -> HttpResponseRedirect:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse(default)
    return HttpResponseRedirect(target)


# --- the approval queue ---------------------------------------------------------------------


@require_GET
@login_required
@menu_page("review_queue")
def queue(request: ReviewRequest) -> HttpResponse:
    form = read_choices(QueueFilter(request.GET or None, user=request.user))
    pending = selectors.pending_for(request.user)
    if form.is_valid():
        pending = form.apply(pending)
    elif form.is_bound:
        pending = selectors.no_pending(pending)
    cursor = selectors.queue_fingerprint(pending)
    query = request.GET.copy()
    query.pop("since", None)

    def context() -> dict[str, Any]:
        return {
            "form": form,
            "rows": selectors.queue_rows(request.user, pending),
            "cursor": cursor,
            "query": query.urlencode(),
            # Where a decision returns to: this page with its filters, without the polling cursor.
            "page_path": f"{reverse('review_queue')}?{query.urlencode()}" if query else reverse("review_queue"),
            "may_approve_somewhere": selectors.may_approve_somewhere(request.user),
        }

    # The rows carry the user's own limits and buttons (with the CSRF token): one render each.
    return live_poll(
        request,
        marker=cursor,
        sent=request.GET.get("since"),
        page="review/queue.html",
        fragment="review/queue.html#queue-rows",
        context=context,
    )


@require_POST
@login_required
def approve(request: ReviewRequest, pk: int) -> HttpResponse:
    proposal = get_decidable_proposal(request.user, pk)
    try:
        result = services.proposal_approve(
            proposal_id=proposal.pk, user=request.user, reason=request.POST.get("reason", "")
        )
        messages.success(request, result.message)
    except services.DecisionError as exc:
        messages.error(request, str(exc))
    return _back(request)


@require_POST
@login_required
def claim(request: ReviewRequest, pk: int) -> HttpResponse:
    """Claim an item for review: others see who is reading it and cannot decide it meanwhile."""
    proposal = get_decidable_proposal(request.user, pk)
    try:
        services.proposal_claim(proposal_id=proposal.pk, user=request.user)
        messages.success(request, f"You are reviewing {proposal.action_type.name} on J-{proposal.journey_id}.")
    except services.DecisionError as exc:
        messages.error(request, str(exc))
    return _back(request)


@require_POST
@login_required
def release_claim(request: ReviewRequest, pk: int) -> HttpResponse:
    proposal = get_decidable_proposal(request.user, pk)
    try:
        services.proposal_release_claim(proposal_id=proposal.pk, user=request.user)
        messages.success(request, f"{proposal.action_type.name} on J-{proposal.journey_id} is back in the queue.")
    except services.DecisionError as exc:
        messages.error(request, str(exc))
    return _back(request)


@require_POST
@login_required
def reject(request: ReviewRequest, pk: int) -> HttpResponse:
    proposal = get_decidable_proposal(request.user, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["reason"]))
        return _back(request)
    try:
        result = services.proposal_reject(
            proposal_id=proposal.pk, user=request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(request, result.message)
    except services.DecisionError as exc:
        messages.error(request, str(exc))
    return _back(request)


@require_http_methods(["GET", "POST"])
@login_required
def edit_approve(request: ReviewRequest, pk: int) -> HttpResponse:
    proposal = get_decidable_proposal(request.user, pk)
    form_class = edit_form_class(proposal)
    error = ""
    revealed = _revealed_params(request, proposal)
    if request.method == "POST" and "reveal" in request.POST:
        # Break glass on one sensitive parameter: the form shows it in clear, nothing is decided.
        form = form_class(initial=masked_initial(proposal.params, revealed))
        error = "" if revealed else "State why you need to see it (5 characters or more)."
    elif request.method == "POST":
        # A sensitive field still showing its masked form keeps the stored value.
        form = form_class(keep_masked(request.POST.dict(), proposal.params))
        if form.is_valid():
            reason = form.cleaned_data["edit_reason"]
            params = form.params(proposal)
            try:
                result = services.proposal_edit_approve(
                    proposal_id=proposal.pk, user=request.user, params=params, reason=reason
                )
            except services.DecisionError as exc:
                error = str(exc)
            else:
                if result.outcome != "refused":
                    messages.success(request, result.message)
                    return _back(request)
                error = result.message
    else:
        form = form_class(initial=masked_initial(proposal.params))
    if form.is_bound:
        # Shown again after an error: a sensitive field left masked stays masked, never the stored value.
        form.data = {**form.data, **{k: v for k, v in request.POST.items() if is_sensitive(k)}}
    spec = ACTION_SPECS[proposal.action_type.key]
    context = {
        "proposal": proposal,
        "form": form,
        "fixed_params": {k: v for k, v in proposal.params.items() if k not in spec.editable_params},
        "error": error,
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "limit": decision_limit_for(request.user, proposal),
        "brief": decision_brief(proposal),
        "may_unmask": may_unmask(request.user, proposal.journey.definition_id),
        "sensitive_fields": [name for name in form.fields if is_sensitive(name) and proposal.params.get(name)],
        "may_open": selectors.may_open_journeys_of(request.user, proposal.journey.definition_id),
    }
    status = 400 if request.method == "POST" and not revealed else 200
    return render(request, "review/edit.html", context, status=status)


def _revealed_params(request: ReviewRequest, proposal: ProposedAction) -> list[str]:
    """The sensitive parameter this POST breaks glass for (audited), or nothing."""
    key = request.POST.get("reveal", "") if request.method == "POST" else ""
    reason = request.POST.get("reveal_reason", "").strip()
    if not key or len(reason) < 5 or not may_unmask(request.user, proposal.journey.definition_id):
        return []
    try:
        value = proposal_param_unmask(user=request.user, proposal=proposal, key=key, reason=reason[:300])
    except KeyError:
        return []
    request.masker.reveal(value)
    return [key]


@require_POST
@login_required
def batch(request: ReviewRequest) -> HttpResponse:
    form = BatchForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return _back(request)
    ids = form.cleaned_data["ids"]
    # Only actions the user may decide reach the service; it re-checks each one under its lock.
    visible = selectors.decidable_ids(request.user, ids)
    results = services.proposals_decide_batch(
        proposal_ids=[pk for pk in ids if pk in visible],
        user=request.user,
        decision=form.cleaned_data["decision"],
        reason=form.cleaned_data["reason"],
    )
    results += [services.BatchItem(pk, False, "No such action in your queue.") for pk in ids if pk not in visible]
    done = [r for r in results if r.ok]
    refused = [r for r in results if not r.ok]
    if done:
        messages.success(request, f"{len(done)} of {len(results)} went through: " + " ".join(r.message for r in done))
    if refused:
        messages.error(
            request, f"{len(refused)} did not: " + " ".join(f"#{r.proposal_id}: {r.message}" for r in refused)
        )
    return _back(request)


# --- scopes -------------------------------------------------------------------------------------


def _require_view_scopes(user) -> None:
    if not may_view_scopes(user):
        raise Http404("No such page.")


def _require_edit_scopes(user) -> None:
    _require_view_scopes(user)
    if not may_edit_scopes(user):
        raise PermissionDenied("Only admins change permission scopes.")


@require_GET
@login_required
def scope_list(request: ReviewRequest) -> HttpResponse:
    _require_view_scopes(request.user)
    may_edit = may_edit_scopes(request.user)
    context = {**selectors.scopes_page(request.user, may_edit=may_edit), "may_edit": may_edit}
    return render(request, "review/scopes.html", context)


APPROVAL_FIELDS = ("approval_timeout_minutes", "on_timeout", "escalate_to")
APPROVAL_EFFECTS = (ProposedAction.Effect.REQUIRE_APPROVAL, ProposedAction.Effect.REQUIRE_TWO_APPROVALS)


def _scope_form_page(request: ReviewRequest, scope: PermissionScope | None) -> HttpResponse:
    _require_edit_scopes(request.user)
    original = selectors.scope_fresh(scope) if scope else None
    form = read_choices(ScopeForm(request.POST or None, instance=scope))
    preview = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            if "preview" in request.POST:
                preview = preview_rows(form.save(commit=False), original)
                preview["changed_only"] = request.POST.get("changed_only") == "on"
            else:
                _submit(request, form, "Scope")
                return HttpResponseRedirect(reverse("review_scopes"))
        else:
            status = 400
    history = selectors.rule_history(ScopeChange.Target.SCOPE, scope.pk) if scope else []
    return render(
        request,
        "review/scope_form.html",
        {
            "form": form,
            "scope": original,
            "preview": preview,
            "history": history,
            # Timeout, on-timeout and escalation apply only to rules that wait for approvers.
            "approval_fields": APPROVAL_FIELDS,
            "approval_applies": (form["effect"].value() or "") in APPROVAL_EFFECTS,
            "escalation_applies": form["on_timeout"].value() == OnTimeout.ESCALATE,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def scope_create(request: ReviewRequest) -> HttpResponse:
    return _scope_form_page(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def scope_edit(request: ReviewRequest, pk: int) -> HttpResponse:
    _require_edit_scopes(request.user)
    scope = selectors.scope_or_none(pk)
    if scope is None:
        raise Http404("No such scope.")
    return _scope_form_page(request, scope)


def _submit(request: ReviewRequest, form, noun: str) -> None:
    """Save a scope or limit form: at once when it only narrows, else as a governance change
    that waits for a second admin (``review.services.governance``)."""
    try:
        saved, change, pending = rule_submit(form=form, actor=request.user, reason=form.cleaned_data["reason"])
    except services.ScopeError as exc:
        messages.error(request, str(exc))
        return
    if pending is not None:
        messages.warning(
            request,
            f"Your request to {pending.subject} waits for a second admin to approve it (Governance changes); "
            "nothing changes until then.",
        )
    elif change is None:
        messages.info(request, f"Nothing changed in '{form.instance.name}'.")
    else:
        messages.success(request, f"{noun} '{saved.name}' {change.get_change_display().lower()}.")


def _toggle(request: ReviewRequest, pk: int, model) -> HttpResponse:
    _require_edit_scopes(request.user)
    form = ToggleForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["reason"]))
        return HttpResponseRedirect(reverse("review_scopes"))
    enabled = request.POST.get("enabled") == "1"
    try:
        obj, pending = rule_toggle_submit(
            model=model, pk=pk, enabled=enabled, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except services.ScopeError as exc:
        messages.error(request, str(exc))
    else:
        if pending is not None:
            messages.warning(request, f"Your request to {pending.subject} waits for a second admin to approve it.")
        else:
            messages.success(request, f"'{obj.name}' {'enabled' if enabled else 'disabled'}.")
    return HttpResponseRedirect(reverse("review_scopes"))


@require_POST
@login_required
def scope_toggle(request: ReviewRequest, pk: int) -> HttpResponse:
    return _toggle(request, pk, PermissionScope)


@require_POST
@login_required
def limit_toggle(request: ReviewRequest, pk: int) -> HttpResponse:
    return _toggle(request, pk, CumulativeLimit)


def _limit_form_page(request: ReviewRequest, limit: CumulativeLimit | None) -> HttpResponse:
    _require_edit_scopes(request.user)
    form = read_choices(LimitForm(request.POST or None, instance=limit))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _submit(request, form, "Limit")
            return HttpResponseRedirect(reverse("review_scopes"))
        status = 400
    history = selectors.rule_history(ScopeChange.Target.LIMIT, limit.pk) if limit else []
    original = selectors.limit_fresh(limit) if limit else None
    return render(
        request, "review/limit_form.html", {"form": form, "limit": original, "history": history}, status=status
    )


@require_http_methods(["GET", "POST"])
@login_required
def limit_create(request: ReviewRequest) -> HttpResponse:
    return _limit_form_page(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def limit_edit(request: ReviewRequest, pk: int) -> HttpResponse:
    _require_edit_scopes(request.user)
    limit = selectors.limit_or_none(pk)
    if limit is None:
        raise Http404("No such limit.")
    return _limit_form_page(request, limit)


# --- after-the-fact review ----------------------------------------------------------------------


@require_GET
@login_required
@menu_page("review_samples")
def sample_list(request: ReviewRequest) -> HttpResponse:
    show = request.GET.get("show", "open")
    context = {
        **selectors.samples_page(request.user, show=show),
        "show": show,
        "share": settings.HANDOFF.get("REVIEW_SAMPLE_SHARE", 0),
    }
    return render(request, "review/samples.html", context)


@require_POST
@login_required
def sample_mark(request: ReviewRequest, pk: int) -> HttpResponse:
    sample = selectors.markable_sample(request.user, pk)
    if sample is None:
        raise Http404("No such sample.")
    form = SampleMarkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return _back(request, "review_samples")
    try:
        services.sample_mark(
            sample=sample, user=request.user, verdict=form.cleaned_data["verdict"], note=form.cleaned_data["note"]
        )
        messages.success(request, f"Sample #{sample.pk} marked {form.cleaned_data['verdict']}.")
    except services.DecisionError as exc:
        messages.error(request, str(exc))
    return _back(request, "review_samples")
