"""The desks' work queue: journeys their agents handed to a person, to claim, assign and release.

A journey is on a desk when it is with a person and nobody controls it (the definition's
fallback queue names the desk). Each action calls one service in ``journeys.control``, which
takes the journey's row lock and moves it through the journey lifecycle; "Claim next" skips rows
another person is claiming at that moment, so two people pressing it get two journeys.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from journeys.access import definitions_for, get_journey_for_user, may_see_any
from journeys.control import (
    ControlError,
    NotAllowed,
    journey_assign,
    journey_claim_next,
    journey_claim_selected,
    journey_release,
)
from journeys.rights import Right

from . import selectors
from .polling import live_poll
from .views import ConsoleRequest

DESK_POLL_SECONDS = 5


class ClaimNextForm(forms.Form):
    definition = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Any of my desks", to_field_name="key", label="Desk"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = definitions_for(user, Right.TAKE_OVER)


class ClaimSelectedForm(forms.Form):
    journeys = forms.TypedMultipleChoiceField(coerce=int, choices=[], label="Journeys")

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        ids = selectors.desk_journey_ids(user)
        self.fields["journeys"].choices = [(pk, f"J-{pk}") for pk in ids]
        self.fields["journeys"].error_messages["required"] = "Select at least one journey to claim."
        self.fields["journeys"].error_messages["invalid_choice"] = "J-%(value)s is not on your desks any more."


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=None, label="Assign to", to_field_name="username")

    def __init__(self, *args, user, definition, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = selectors.assignable_people(user, definition)


class ReleaseForm(forms.Form):
    note = forms.CharField(required=False, max_length=500, label="Note for the desk")


def _back(request: ConsoleRequest) -> HttpResponse:
    url = reverse("desk")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _require_desk(request: ConsoleRequest) -> None:
    """The desk is for people who may take over some journey; to anyone else it does not exist."""
    if not may_see_any(request.user, Right.TAKE_OVER):
        raise Http404("No desk.")


@require_GET
@login_required
def desk(request: ConsoleRequest) -> HttpResponse:
    _require_desk(request)
    user = request.user
    marker = selectors.desk_marker(user)

    def context() -> dict:
        items = selectors.desk_items(user)
        return {
            "unclaimed": [j for j in items if j.controller_user_id is None],
            "claimed": [j for j in items if j.controller_user_id is not None],
            "claim_next_form": selectors.read_choices(ClaimNextForm(user=user)),
            "cursor": marker,
            "poll_seconds": DESK_POLL_SECONDS,
        }

    # The rows carry the user's own assign and release forms (with the CSRF token): one render each.
    return live_poll(
        request,
        marker=marker,
        sent=request.GET.get("cursor"),
        page="console/desk.html",
        fragment="console/desk.html#desk-items",
        context=context,
    )


@require_POST
@login_required
def claim_next(request: ConsoleRequest) -> HttpResponse:
    _require_desk(request)
    form = ClaimNextForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, "That desk is not one of yours.")
        return _back(request)
    journey = journey_claim_next(user=request.user, definition=form.cleaned_data["definition"])
    if journey is None:
        messages.info(request, "Nothing is waiting on your desks.")
        return _back(request)
    messages.success(request, f"You have J-{journey.pk}: {journey.needs_person_reason or 'it waits on a person.'}")
    url = reverse("journey_detail", args=[journey.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@login_required
def claim_selected(request: ConsoleRequest) -> HttpResponse:
    _require_desk(request)
    form = ClaimSelectedForm(request.POST, user=request.user)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _back(request)
    claimed, refused = journey_claim_selected(journey_ids=form.cleaned_data["journeys"], user=request.user)
    if claimed:
        messages.success(request, "You claimed " + ", ".join(f"J-{j.pk}" for j in claimed) + ".")
    for reason in refused:
        messages.warning(request, reason)
    return _back(request)


@require_POST
@login_required
def assign(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk, Right.TAKE_OVER)
    form = AssignForm(request.POST, user=request.user, definition=journey.definition)
    if not form.is_valid():
        messages.error(request, "Choose a member of your team who works this desk.")
        return _back(request)
    assignee = form.cleaned_data["assignee"]
    try:
        journey_assign(journey_id=journey.pk, user=request.user, assignee=assignee)
    except ControlError as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"J-{journey.pk} is assigned to {assignee.get_username()}.")
    return _back(request)


@require_POST
@login_required
def release(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk, Right.TAKE_OVER)
    form = ReleaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note is too long (500 characters at most).")
        return _back(request)
    try:
        released = journey_release(journey_id=journey.pk, user=request.user, note=form.cleaned_data["note"])
    except NotAllowed as exc:
        return render(request, "console/control_refused.html", {"message": str(exc), "journey": journey}, status=403)
    except ControlError as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"J-{journey.pk} is back on {released.controller_label}.")
    return _back(request)
