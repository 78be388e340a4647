"""The console shell: landing, the journey list and the journey page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRefresh
from django_htmx.middleware import HtmxDetails

from journeys.access import definitions_for, get_journey_for_user, user_may
from journeys.actions import ACTION_SPECS
from journeys.models import Journey, ProposedAction
from journeys.rights import Right
from journeys.selectors import (
    journey_family,
    journey_list_page,
    journey_proposals,
    journey_state_key,
    newest_event_id,
    timeline_events,
)
from review.audit.access import may_unmask
from review.selectors import journey_review

from .navigation import landing_url_name, menu_page
from .polling import live_poll
from .selectors import read_choices
from .timezones import COOKIE as TZ_COOKIE
from .timezones import SESSION_KEY as TZ_SESSION_KEY
from .timezones import choose_zone, chosen_zone, known_zones, valid_zone


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
    definition = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="All definitions", to_field_name="key"
    )
    status = forms.ChoiceField(
        choices=[("", "All statuses"), ("live", "Live"), *Journey.Status.choices], required=False
    )
    customer = forms.CharField(required=False, max_length=40)

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = definitions_for(user)


@require_GET
@login_required
@menu_page("journey_list")
def journey_list(request: ConsoleRequest) -> HttpResponse:
    form = JourneyFilter(request.GET or None, user=request.user)
    valid = form.is_valid() or not form.is_bound
    data = form.cleaned_data if form.is_bound and valid else {}
    page = journey_list_page(
        request.user,
        valid=valid,
        definition=data.get("definition"),
        status=data.get("status") or "",
        customer=data.get("customer") or "",
        page=request.GET.get("page"),
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": read_choices(form), "page": page, "query": query.urlencode()}
    template = "console/journey_list.html#journey-rows" if request.htmx else "console/journey_list.html"
    return render(request, template, context)


def _timeline_context(journey: Journey, user: Any, *, with_cases: bool = False) -> dict:
    events, count = timeline_events(journey)
    return {
        "journey": journey,
        "events": events,
        "event_count": count,
        # Annotations by event (and, for the whole page, the exception cases): the tags only arrange them.
        "journey_review": journey_review(user, journey, with_cases=with_cases),
        "last_event_id": events[0].pk if events else 0,
        "state_key": journey_state_key(journey),
    }


def journey_page_context(request: ConsoleRequest, journey: Journey, **forms_: forms.Form) -> dict:
    """Everything the journey page shows; control forms may come in bound (with their errors)."""
    from journeys.control import action_type_pauses, active_pause_for
    from journeys.lifecycle import transitions_for

    from .control import HandBackForm, MessageForm, TakeOverForm, new_form_key
    from .propose_form import ProposeForm

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
    user = request.user
    # The buttons come from the lifecycle: the same rules the services enforce on submit.
    allowed = transitions_for(user, journey)
    in_control = "act" in allowed
    journey.agents_paused = journey.is_live and active_pause_for(journey) is not None
    proposals = journey_proposals(user, journey)
    return {
        **_timeline_context(journey, user, with_cases=True),
        "steps": steps,
        "facts": journey.context.get("facts", {}),
        "request_data": journey.context.get("request", {}),
        "guidance": journey.context.get("guidance", []),
        # Sensitive facts are shown masked; this decides whether the break-glass form appears.
        "may_unmask": may_unmask(request.user, journey.definition_id),
        "may_audit_journey": user_may(request.user, Right.AUDIT, journey.definition),
        "proposals": proposals,
        "pending_proposals": [p for p in proposals if p.status == ProposedAction.Status.PENDING],
        "approved_proposals": [
            p for p in proposals if p.status in (ProposedAction.Status.APPROVED, ProposedAction.Status.AUTO_APPROVED)
        ],
        **journey_family(user, journey),
        "in_control": in_control,
        "journey_transitions": allowed,
        "may_take_over": "take_over" in allowed,
        "may_force_hand_back": "force_hand_back" in allowed,
        "agent_pause": active_pause_for(journey) if journey.is_live else None,
        "action_pauses": action_type_pauses() if journey.is_live else [],
        "take_over_form": forms_.get("take_over_form") or TakeOverForm(),
        "hand_back_form": forms_.get("hand_back_form") or HandBackForm(),
        "message_form": forms_.get("message_form") or MessageForm(initial={"key": new_form_key()}),
        # Built only for the person in control: it asks the core bank for the customer's resources.
        "propose_form": forms_.get("propose_form")
        or (ProposeForm(initial={"key": new_form_key()}, journey=journey) if in_control else None),
        "action_specs": ACTION_SPECS if in_control else {},
    }


@require_GET
@login_required
def journey_detail(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    return render(request, "console/journey_detail.html", journey_page_context(request, journey))


@require_GET
@login_required
def journey_timeline(request: ConsoleRequest, pk: int) -> HttpResponse:
    """The timeline poll. ``after`` is the newest event the page shows: nothing newer → 204.

    When the journey's control state moved (taken over, handed back, finished, paused) the page
    reloads, so its buttons match; otherwise only the timeline and the header facts are swapped.
    """
    journey = get_journey_for_user(request.user, pk)
    if request.htmx and request.GET.get("state") and request.GET["state"] != journey_state_key(journey):
        return HttpResponseClientRefresh()
    # The marker is the newest event the page shows.
    return live_poll(
        request,
        marker=str(newest_event_id(journey)),
        sent=request.GET.get("after"),
        page="console/journey_detail.html",
        fragment="console/journey_detail.html#timeline",
        context=lambda: (
            {**_timeline_context(journey, request.user), "oob": True}
            if request.htmx
            else journey_page_context(request, journey)
        ),
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


class OperatorSettingsForm(forms.Form):
    time_zone = forms.ChoiceField(label="Time zone", required=False)

    def __init__(self, *args, browser_zone: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            ("", f"My browser's zone ({browser_zone})"),
            *((zone, zone.replace("_", " ")) for zone in sorted(known_zones())),
        ]
        self.fields["time_zone"].error_messages["invalid_choice"] = "Choose a time zone from the list."


@login_required
def operator_settings(request: ConsoleRequest) -> HttpResponse:
    """The person's own settings: for now, the time zone every page shows times in."""
    browser_zone = valid_zone(request.COOKIES.get(TZ_COOKIE)) or "not known yet"
    saved = chosen_zone(request.user)
    if request.method == "POST":
        form = OperatorSettingsForm(request.POST, browser_zone=browser_zone)
        if form.is_valid():
            zone = form.cleaned_data["time_zone"]
            choose_zone(request.user, zone)
            if zone:
                request.session[TZ_SESSION_KEY] = zone
                messages.success(request, f"Times are now shown in {zone}.")
            else:
                request.session.pop(TZ_SESSION_KEY, None)
                messages.success(request, "Times are now shown in your browser's zone.")
            return redirect("operator_settings")
    else:
        form = OperatorSettingsForm(initial={"time_zone": saved}, browser_zone=browser_zone)
    return render(request, "console/settings.html", {"form": form, "browser_zone": browser_zone})
