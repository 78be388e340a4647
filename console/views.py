"""The console shell: landing, the journey list and the journey page."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from journeys.access import definitions_for, get_journey_for_user, journeys_for, user_may
from journeys.models import Journey
from review.audit.access import may_unmask

from .navigation import landing_url_name


class ConsoleRequest(HttpRequest):
    user: User
    htmx: HtmxDetails


@login_required
def home(request: ConsoleRequest) -> HttpResponse:
    return redirect(landing_url_name(request.user))


@login_required
def no_access(request: ConsoleRequest) -> HttpResponse:
    return render(request, "console/no_access.html")


class JourneyFilter(forms.Form):
    definition = forms.ModelChoiceField(queryset=None, required=False, empty_label="All definitions",
                                        to_field_name="key")
    status = forms.ChoiceField(choices=[("", "All statuses"), ("live", "Live"), *Journey.Status.choices],
                               required=False)
    customer = forms.CharField(required=False, max_length=40)

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = definitions_for(user)

    def apply(self, qs):
        data = self.cleaned_data
        if data.get("definition"):
            qs = qs.filter(definition=data["definition"])
        if data.get("status") == "live":
            qs = qs.live()
        elif data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("customer"):
            qs = qs.filter(customer_ref__icontains=data["customer"].strip())
        return qs


@require_GET
@login_required
def journey_list(request: ConsoleRequest) -> HttpResponse:
    form = JourneyFilter(request.GET or None, user=request.user)
    journeys = journeys_for(request.user).select_related("definition", "version", "agent", "controller_user")
    if form.is_valid():
        journeys = form.apply(journeys)
    elif form.is_bound:
        journeys = journeys.none()
    page = Paginator(journeys.order_by("-created_at", "-pk"), 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "console/journey_list.html#journey-rows" if request.htmx else "console/journey_list.html"
    return render(request, template, context)


def _timeline_context(journey: Journey) -> dict:
    return {
        "journey": journey,
        "events": journey.events.timeline()[:200],
        "event_count": journey.events.count(),
    }


@require_GET
@login_required
def journey_detail(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    steps = []
    seen_current = False
    for step in journey.version.steps:
        is_current = step["key"] == journey.current_step
        state = "current" if is_current and journey.is_live else ("done" if not seen_current else "todo")
        if is_current:
            seen_current = True
            if journey.status == Journey.Status.COMPLETED:
                state = "done"
        steps.append({**step, "state": state})
    context = {
        **_timeline_context(journey),
        "steps": steps,
        "facts": journey.context.get("facts", {}),
        "request_data": journey.context.get("request", {}),
        "guidance": journey.context.get("guidance", []),
        "proposals": journey.proposals.select_related("action_type", "proposed_by_agent", "proposed_by_user",
                                                      "decided_by").order_by("-created_at", "-pk"),
        "children": journeys_for(request.user).filter(parent=journey),
        "parent": journeys_for(request.user).filter(pk=journey.parent_id).first() if journey.parent_id else None,
        # Sensitive facts are shown masked; this decides whether the break-glass form appears.
        "may_unmask": may_unmask(request.user, journey.definition_id),
        "may_audit_journey": user_may(request.user, "audit", journey.definition),
    }
    return render(request, "console/journey_detail.html", context)


@require_GET
@login_required
def journey_timeline(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    return render(request, "console/journey_detail.html#timeline", _timeline_context(journey))


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
