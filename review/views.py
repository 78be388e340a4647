"""The review pages: the approval queue, decisions, the scope editor and after-the-fact review.

Every view reaches its objects through ``review.access`` / ``journeys.access``: the queue is the
user's permitted queryset, a proposal on a definition the user may not approve is a 404 unless
it was escalated to one of the user's teams (then the queue, approve, reject and edit accept
that one item; the journey page stays governed by view grants).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, F, Max, Q, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from console.navigation import menu_page
from console.polling import live_poll
from journeys.access import definitions_for
from journeys.actions import ACTION_SPECS
from journeys.models import ProposedAction
from journeys.rights import Right
from journeys.selectors import with_transitions

from . import services
from .access import (
    decidable_proposals_for,
    decision_limit_for,
    get_decidable_proposal,
    may_edit_scopes,
    may_receive_escalations,
    may_view_scopes,
    samples_for,
    samples_visible_to,
)
from .audit.access import may_unmask
from .audit.masking import is_sensitive, keep_masked, masked_initial
from .audit.services import proposal_param_unmask
from .briefs import decision_brief, with_brief
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
from .policy import judge, proposer_user_id, winning_scope
from .services.governance import pending_changes, rule_submit, rule_toggle_submit


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


def _pending_for(user):
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


def _fingerprint(qs) -> str:
    """A cheap cursor for polling: changes when an item arrives, leaves or gets an approval."""
    agg = qs.order_by().aggregate(
        n=Count("pk", distinct=True),
        last=Max("pk"),
        approvals=Max("approvals__pk"),
        expiry=Max("expires_at"),
        claims=Count("pk", distinct=True, filter=Q(claimed_by__isnull=False)),
        claimed=Max("claimed_until"),
    )
    return hashlib.sha1(repr(sorted(agg.items())).encode()).hexdigest()[:16]


def _queue_rows(user, qs) -> list[dict[str, Any]]:
    limits: dict[int, Decimal | None] = {}
    approvable = set(definitions_for(user, Right.APPROVE).values_list("pk", flat=True))
    viewable = set(definitions_for(user, Right.VIEW).values_list("pk", flat=True))
    rows = []
    for proposal in qs[:200]:
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


@require_GET
@login_required
@menu_page("review_queue")
def queue(request: ReviewRequest) -> HttpResponse:
    form = QueueFilter(request.GET or None, user=request.user)
    pending = _pending_for(request.user)
    if form.is_valid():
        pending = form.apply(pending)
    elif form.is_bound:
        pending = pending.none()
    cursor = _fingerprint(pending)
    query = request.GET.copy()
    query.pop("since", None)

    def context() -> dict[str, Any]:
        return {
            "form": form,
            "rows": _queue_rows(request.user, pending),
            "cursor": cursor,
            "query": query.urlencode(),
            # Where a decision returns to: this page with its filters, without the polling cursor.
            "page_path": f"{reverse('review_queue')}?{query.urlencode()}" if query else reverse("review_queue"),
            "may_approve_somewhere": definitions_for(request.user, Right.APPROVE).exists()
            or may_receive_escalations(request.user),
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
        "may_open": definitions_for(request.user, Right.VIEW).filter(pk=proposal.journey.definition_id).exists(),
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
    visible = set(decidable_proposals_for(request.user).filter(pk__in=ids).values_list("pk", flat=True))
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
    context = {
        "scopes": PermissionScope.objects.select_related("definition", "agent", "action_type", "escalate_to"),
        "limits": CumulativeLimit.objects.select_related("definition", "action_type"),
        "history": ScopeChange.objects.select_related("actor")[:30],
        "may_edit": may_edit_scopes(request.user),
        "pending": pending_changes().exclude(kind="grant").select_related("maker")
        if may_edit_scopes(request.user)
        else [],
    }
    return render(request, "review/scopes.html", context)


APPROVAL_FIELDS = ("approval_timeout_minutes", "on_timeout", "escalate_to")
APPROVAL_EFFECTS = (ProposedAction.Effect.REQUIRE_APPROVAL, ProposedAction.Effect.REQUIRE_TWO_APPROVALS)


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


def _scope_form_page(request: ReviewRequest, scope: PermissionScope | None) -> HttpResponse:
    _require_edit_scopes(request.user)
    original = PermissionScope.objects.get(pk=scope.pk) if scope else None
    form = ScopeForm(request.POST or None, instance=scope)
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
    history = ScopeChange.objects.filter(target=ScopeChange.Target.SCOPE, target_id=scope.pk) if scope else []
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
    scope = PermissionScope.objects.filter(pk=pk).first()
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
    form = LimitForm(request.POST or None, instance=limit)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _submit(request, form, "Limit")
            return HttpResponseRedirect(reverse("review_scopes"))
        status = 400
    history = ScopeChange.objects.filter(target=ScopeChange.Target.LIMIT, target_id=limit.pk) if limit else []
    original = CumulativeLimit.objects.get(pk=limit.pk) if limit else None
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
    limit = CumulativeLimit.objects.filter(pk=pk).first()
    if limit is None:
        raise Http404("No such limit.")
    return _limit_form_page(request, limit)


# --- after-the-fact review ----------------------------------------------------------------------


@require_GET
@login_required
@menu_page("review_samples")
def sample_list(request: ReviewRequest) -> HttpResponse:
    show = request.GET.get("show", "open")
    samples = samples_visible_to(request.user).select_related(
        "proposal__action_type", "proposal__journey__definition", "proposal__proposed_by_agent", "reviewed_by"
    )
    if show == "open":
        samples = samples.filter(verdict="")
    markable = set(samples_for(request.user, Right.APPROVE).values_list("pk", flat=True))
    context = {
        "samples": samples[:200],
        "markable": markable,
        "show": show,
        "share": settings.HANDOFF.get("REVIEW_SAMPLE_SHARE", 0),
    }
    return render(request, "review/samples.html", context)


@require_POST
@login_required
def sample_mark(request: ReviewRequest, pk: int) -> HttpResponse:
    sample = samples_for(request.user, Right.APPROVE).filter(pk=pk).first()
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
