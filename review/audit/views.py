"""Compliance pages: search the trail, a journey's story, exports, verification, break glass.

Everything starts from ``review.audit.access``: a person reads only the records their ``audit``
grants allow, and a journey or record outside them is a 404. Nothing here changes the trail
except by appending (an export, a break-glass unmask and a verification run are audited or
recorded as such).
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from journeys.access import get_journey_for_user
from journeys.models import ProposedAction
from journeys.rights import Right
from review.models import AuditRecord
from review.models.audit import journey_chain

from . import selectors
from .access import may_audit, may_see_audit_health, may_unmask, unmask_definition_ids
from .chain import checkpoint_create, governance_append
from .export import Export
from .masking import is_sensitive, lookup_field, mask_data
from .services import sensitive_unmask, verification_acknowledge, verification_request
from .sink import checkpoint_publish

logger = logging.getLogger(__name__)


# Exactly the kinds the trail holds: the enumeration its writers use.
KIND_CHOICES = [("", "Any kind"), *sorted(AuditRecord.Kind.choices, key=lambda c: str(c[1]))]
DECISION_CHOICES = [
    ("", "Any decision"),
    *ProposedAction.Effect.choices,
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("expired", "Expired"),
    ("executed", "Executed"),
    ("failed", "Failed"),
]


class AuditSearch(forms.Form):
    journey = forms.IntegerField(required=False, min_value=1, label="Journey")
    customer = forms.CharField(required=False, max_length=40, label="Customer ref")
    actor = forms.CharField(required=False, max_length=150, label="Actor (user or agent)")
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES, label="Record kind")
    action = forms.CharField(required=False, max_length=60, label="Action type")
    decision = forms.ChoiceField(required=False, choices=DECISION_CHOICES, label="Decision")
    since = forms.DateTimeField(
        required=False, label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise forms.ValidationError("“From” must be before “Until”.")
        return data


def _cursor(value: str | None) -> int | None:
    try:
        number = int(value) if value else None
    except ValueError:
        return None
    return number if number and number > 0 else None


def _searched(request: HttpRequest) -> tuple[AuditSearch, QuerySet[AuditRecord]]:
    form = AuditSearch(request.GET or None)
    filters = (form.cleaned_data if form.is_valid() else None) if form.is_bound else {}
    return form, selectors.searched_records(request.user, filters)


def _display(records: list[AuditRecord]) -> list[dict[str, Any]]:
    return [{"record": r, "payload": mask_data(r.payload)} for r in records]


@require_GET
@login_required
def search(request: HttpRequest) -> HttpResponse:
    if not may_audit(request.user):
        raise Http404("No audit grants.")
    form, records = _searched(request)
    # Keyset pagination: newest first by id, never a COUNT over the trail.
    found = selectors.record_page(
        records, before=_cursor(request.GET.get("before")), after=_cursor(request.GET.get("after"))
    )
    page = found.records
    query = request.GET.copy()
    for name in ("before", "after"):
        query.pop(name, None)
    context = {
        "form": form,
        "rows": _display(page),
        "has_older": found.has_older,
        "has_newer": found.has_newer,
        "oldest": page[-1].pk if page else None,
        "newest": page[0].pk if page else None,
        "query": query.urlencode(),
        "latest_verification": selectors.latest_verification(),
        "may_export_unmasked": bool(unmask_definition_ids(request.user)),
    }
    template = "review/audit/search.html#results" if request.htmx else "review/audit/search.html"
    return render(request, template, context)


@require_GET
@login_required
def record_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = selectors.record_or_none(request.user, pk)
    if record is None:
        raise Http404("No such audit record.")
    return render(
        request,
        "review/audit/record.html",
        {"record": record, "payload": mask_data(record.payload)},
    )


def _edit(record: AuditRecord, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "by": record.actor_label,
        "at": record.at,
        "before": data.get("before") or {},
        "after": data.get("after") or {},
        "changed": data.get("changed") or [],
        "reason": data.get("reason") or "",
        "narrowing": data.get("narrowing", ""),
        "summary": record.summary,
    }


def _story(records: list[AuditRecord]) -> list[dict[str, Any]]:
    """The journey's decision points and moments, in order, from its audit records alone."""
    story: list[dict[str, Any]] = []
    points: dict[int, dict[str, Any]] = {}
    for record in records:
        payload = mask_data(record.payload)
        snapshot = (payload or {}).get("proposal") or {}
        data = (payload or {}).get("data") or {}
        if record.proposal_id:
            point = points.get(record.proposal_id)
            if point is None:
                point = {
                    "type": "decision",
                    "proposal_id": record.proposal_id,
                    "at": record.at,
                    "action": snapshot.get("action_name") or record.action_type,
                    "records": [],
                }
                points[record.proposal_id] = point
                story.append(point)
            point["records"].append(record)
            point["latest"] = snapshot
            if payload.get("provenance"):
                point["provenance"] = {**point.get("provenance", {}), **payload["provenance"]}
            if record.kind == AuditRecord.Kind.ACTION_PROPOSED:
                point.update(
                    proposed_by=record.actor_label,
                    explanation=snapshot.get("explanation"),
                    params=snapshot.get("params") or data.get("params") or {},
                    confidence=snapshot.get("confidence"),
                )
            elif record.kind == AuditRecord.Kind.ACTION_DECIDED:
                point.update(
                    rule=data.get("rule") or snapshot.get("rule"),
                    effect=record.decision,
                    decision_explanation=record.summary,
                    required_approvals=snapshot.get("required_approvals"),
                )
            elif record.kind == AuditRecord.Kind.ACTION_EDITED:
                point.setdefault("edits", []).append(_edit(record, data))
            elif record.kind in (
                AuditRecord.Kind.ACTION_APPROVED,
                AuditRecord.Kind.ACTION_REJECTED,
                AuditRecord.Kind.ACTION_EXPIRED,
            ):
                if data.get("edited") and data.get("before") is not None:
                    # An edit recorded with its approval (before edits were events of their own).
                    point.setdefault("edits", []).append(
                        _edit(record, {**data, "reason": data.get("reason") or snapshot.get("decision_reason")})
                    )
                point.setdefault("human_decisions", []).append(
                    {
                        "outcome": record.decision,
                        "by": record.actor_label,
                        "at": record.at,
                        "reason": data.get("reason") or snapshot.get("decision_reason") or "",
                    }
                )
            elif record.kind in (AuditRecord.Kind.ACTION_EXECUTED, AuditRecord.Kind.ACTION_FAILED):
                point.setdefault("outcomes", []).append(
                    {
                        "outcome": record.decision,
                        "at": record.at,
                        "summary": record.summary,
                        "result": data.get("result") if data.get("result") is not None else snapshot.get("result"),
                        "error": data.get("error") or snapshot.get("error") or "",
                    }
                )
        else:
            story.append({"type": "moment", "record": record, "payload": payload})
    return story


@require_GET
@login_required
def journey_story(request: HttpRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk, Right.AUDIT)
    records = list(selectors.journey_records(request.user, journey.pk))
    context = {
        "journey": journey,
        "story": _story(records),
        "record_count": len(records),
        "may_export_unmasked": may_unmask(request.user, journey.definition_id),
    }
    return render(request, "review/audit/journey.html", context)


class UnmaskedExportForm(forms.Form):
    reason = forms.CharField(
        min_length=5,
        max_length=300,
        strip=True,
        error_messages={
            "required": "State why the export must show sensitive values.",
            "min_length": "State why the export must show sensitive values (5 characters or more).",
        },
    )


def _stream(
    request: HttpRequest,
    records: QuerySet[AuditRecord],
    fmt: str,
    name: str,
    description: dict[str, Any],
    *,
    whole_chain: str | None = None,
    definition_id: int | None = None,
) -> HttpResponse:
    """Masked by default. A POST with a stated reason exports unmasked, but only the records on
    definitions where the person may unmask; refused outright when they may unmask nowhere."""
    allowed: set[int] = set()
    reason = ""
    if request.method == "POST":
        form = UnmaskedExportForm(request.POST)
        if not form.is_valid():
            return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
        allowed = unmask_definition_ids(request.user)
        if definition_id is not None:
            allowed &= {definition_id}
        if not allowed:
            return HttpResponse("You may not export sensitive values unmasked.", status=403, content_type="text/plain")
        reason = form.cleaned_data["reason"]
    # Sign (and send outside) a checkpoint first, so every exported record is covered by one.
    checkpoint_create()
    try:
        checkpoint_publish()
    except OSError:
        logger.exception("The checkpoint sink could not be written; beat will retry.")
    export = Export(
        records,
        may_unmask=lambda r: r.definition_id in allowed,
        whole_chain=whole_chain,
        what={**description, "unmasked": bool(allowed), "by": request.user.get_username()},
    )
    unmasked_note = f" unmasked ({reason})" if allowed else ""
    governance_append(
        kind=AuditRecord.Kind.AUDIT_EXPORT,
        summary=f"Exported the audit trail as {fmt.upper()}{unmasked_note}: {name}",
        actor=request.user,
        definition_id=definition_id,
        payload={
            "format": fmt,
            "what": description,
            "unmasked": bool(allowed),
            "unmasked_definitions": sorted(allowed),
            "reason": reason,
            "chains": {chain: claim["checkpoint"]["seq"] for chain, claim in export.claims.items()},
        },
    )
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    response = StreamingHttpResponse(export.lines(fmt), content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    suffix = "-unmasked" if allowed else ""
    response["Content-Disposition"] = f'attachment; filename="audit-{name}{suffix}-{stamp}.{fmt}"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
def export_search(request: HttpRequest, fmt: str) -> HttpResponse:
    if not may_audit(request.user):
        raise Http404("No audit grants.")
    form, records = _searched(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse(f"Invalid search: {form.errors.as_text()}", status=400, content_type="text/plain")
    filters = {k: v for k, v in (form.cleaned_data if form.is_bound else {}).items() if v not in (None, "")}
    return _stream(request, records, fmt, "search", {"filters": {k: str(v) for k, v in filters.items()}})


@require_http_methods(["GET", "POST"])
@login_required
def export_journey(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk, Right.AUDIT)
    records = selectors.journey_records(request.user, journey.pk)
    return _stream(
        request,
        records,
        fmt,
        f"J-{journey.pk}",
        {"journey": journey.pk},
        whole_chain=journey_chain(journey.pk),
        definition_id=journey.definition_id,
    )


@require_GET
@login_required
def verify_page(request: HttpRequest) -> HttpResponse:
    if not may_audit(request.user):
        raise Http404("No audit grants.")
    return render(request, "review/audit/verify.html", selectors.verification_overview())


@require_GET
@login_required
def verify_progress(request: HttpRequest, pk: int) -> HttpResponse:
    if not may_audit(request.user):
        raise Http404("No audit grants.")
    verification = selectors.verification_or_none(pk)
    if verification is None:
        raise Http404("No such verification.")
    return render(request, "review/audit/verify.html#progress", {"verification": verification})


@require_POST
@login_required
def verify_start(request: HttpRequest) -> HttpResponse:
    if not may_audit(request.user):
        raise Http404("No audit grants.")
    # One run at a time (a stale run no longer blocks a new one).
    verification = selectors.running_verification() or verification_request(user=request.user)
    if request.htmx:
        return render(request, "review/audit/verify.html#progress", {"verification": verification})
    return render(request, "review/audit/verify.html", selectors.verification_overview())


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        min_length=5,
        max_length=300,
        strip=True,
        error_messages={"min_length": "Say what you are doing about it (5 characters or more)."},
    )


@require_POST
@login_required
def verify_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    if not may_see_audit_health(request.user):
        raise Http404("No such verification.")
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    if verification_acknowledge(verification_id=pk, user=request.user, note=form.cleaned_data["note"]) is None:
        return HttpResponse(
            "That verification is not a failed run waiting for acknowledgement.", status=409, content_type="text/plain"
        )
    messages.success(request, "Acknowledged; the acknowledgement is in the audit trail.")
    return redirect("audit:verify")


class UnmaskForm(forms.Form):
    field = forms.CharField(max_length=80)
    reason = forms.CharField(
        min_length=5,
        max_length=300,
        strip=True,
        error_messages={"min_length": "State why you need to see this (5 characters or more)."},
    )


@require_POST
@login_required
def unmask(request: HttpRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    if not may_unmask(request.user, journey.definition_id):
        raise Http404("No such journey.")
    form = UnmaskForm(request.POST)
    context: dict[str, Any] = {"journey": journey, "may_unmask": True}
    field = request.POST.get("field", "")
    section, _, key = field.partition(".")
    context.update(section=section, key=key)
    if not form.is_valid():
        context.update(errors=form.errors)
        return _render_sensitive(request, journey, section, key, context, status=400)
    try:
        value = sensitive_unmask(
            user=request.user,
            journey=journey,
            field=form.cleaned_data["field"],
            reason=form.cleaned_data["reason"],
        )
    except KeyError:
        return HttpResponse("That is not a sensitive field of this journey.", status=400, content_type="text/plain")
    # The one value this person broke glass for passes the masking layer on this response.
    request.masker.reveal(value)
    context.update(value=value, unmasked=True)
    template = "review/audit/_sensitive_value.html" if request.htmx else "review/audit/unmasked.html"
    return render(request, template, context)


def _render_sensitive(
    request: HttpRequest, journey: Any, section: str, key: str, context: dict[str, Any], status: int
) -> HttpResponse:
    try:
        context["value"] = lookup_field(journey.context, f"{section}.{key}") if is_sensitive(key) else None
    except KeyError:
        return HttpResponse("That is not a sensitive field of this journey.", status=400, content_type="text/plain")
    return render(request, "review/audit/_sensitive_value.html", context, status=status)
