"""Control views: take over, hand back, act as the person in control, and the stop button.

Each view fetches through the access helpers (404 for journeys the user may not see), parses a
form, and calls one service in ``journeys.control``; the service checks the finer rights (take
over, force, pause) and the journey's state under its row lock.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from journeys.access import get_journey_for_user, user_may
from journeys.actions import ActionParamsError
from journeys.control import (
    AlreadyControlled,
    ControlError,
    NotAllowed,
    agents_pause,
    agents_resume,
    journey_hand_back,
    journey_take_over,
    may_force_hand_back,
    may_pause,
    person_execute_approved,
    person_propose,
    person_send_message,
    proposal_withdraw,
)
from journeys.models import Journey, JourneyDefinition, ProposedAction
from journeys.rights import Right

from . import selectors
from .propose_form import ProposeForm
from .views import ConsoleRequest, journey_page_context

KEY_FIELD = dict(widget=forms.HiddenInput, max_length=32, required=False)


def new_form_key() -> str:
    """A one-time key per rendered form: a double-submitted form does its action once."""
    return uuid.uuid4().hex


class TakeOverForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "Why (optional)"}),
    )


class HandBackForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=1000,
        label="Note for the agent",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What the agent should know"}),
    )
    force = forms.BooleanField(required=False, widget=forms.HiddenInput)
    then = forms.ChoiceField(
        choices=[
            ("continue", "The agent continues now"),
            ("wait_for_customer", "The agent waits for the customer's reply first"),
        ],
        initial="continue",
        required=False,
        widget=forms.RadioSelect,
        label="Then",
    )


class MessageForm(forms.Form):
    text = forms.CharField(max_length=2000, label="Message to the customer", widget=forms.Textarea(attrs={"rows": 3}))
    key = forms.RegexField(regex=r"^[0-9a-f]{0,32}$", **KEY_FIELD)


class WithdrawForm(forms.Form):
    reason = forms.CharField(required=False, max_length=500)


class PauseForm(forms.Form):
    scope = forms.CharField(max_length=80)  # "all", a definition key, "agent:<id>" or "action:<key>"
    op = forms.ChoiceField(choices=[("pause", "Pause"), ("resume", "Resume")])
    reason = forms.CharField(required=False, max_length=1000)


def _back(request: ConsoleRequest, journey_id: int) -> HttpResponse:
    url = reverse("journey_detail", args=[journey_id])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _refused(request: ConsoleRequest, message: str, journey: Journey | None = None) -> HttpResponse:
    return render(
        request,
        "console/control_refused.html",
        {"message": message, "journey": journey},
        status=403,
    )


def _precondition(request: ConsoleRequest, journey: Journey, *, need: str) -> HttpResponse | None:
    """Refuse (403) before reading the form when the user may not act here at all.

    ``need`` is "take_over" (the team grant), "control" (the person in control) or
    "control_or_force" (a hand-back: also whoever may force one). The services check again
    under the row lock.
    """
    user = request.user
    if need == "take_over" and not user_may(user, Right.TAKE_OVER, journey.definition):
        return _refused(request, "Your teams may not take over journeys of this kind.", journey)
    if need in ("control", "control_or_force") and journey.controller_user_id != user.pk:
        if need == "control_or_force" and may_force_hand_back(user, journey.definition):
            return None
        return _refused(request, "Only the person in control of this journey can do that.", journey)
    return None


def _invalid(request: ConsoleRequest, journey: Journey, **forms_: forms.Form) -> HttpResponse:
    return render(
        request,
        "console/journey_detail.html",
        journey_page_context(request, journey, **forms_),
        status=400,
    )


@require_http_methods(["GET", "POST"])
@login_required
def take_over(request: ConsoleRequest, pk: int) -> HttpResponse:
    """GET: a short confirmation page (the no-JavaScript path); POST: take over."""
    journey = get_journey_for_user(request.user, pk)
    if refused := _precondition(request, journey, need="take_over"):
        return refused
    form = TakeOverForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" or not form.is_valid():
        return render(
            request,
            "console/take_over_confirm.html",
            {"journey": journey, "form": form},
            status=200 if request.method == "GET" else 400,
        )
    try:
        journey_take_over(journey_id=journey.pk, user=request.user, note=form.cleaned_data["note"])
    except NotAllowed as exc:
        return _refused(request, str(exc), journey)
    except AlreadyControlled as exc:
        messages.warning(request, str(exc))
    except ControlError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"You have J-{journey.pk}. The agent has stopped; hand it back when you are done.",
        )
    return _back(request, journey.pk)


@require_POST
@login_required
def hand_back(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    if refused := _precondition(request, journey, need="control_or_force"):
        return refused
    form = HandBackForm(request.POST)
    if not form.is_valid():
        return _invalid(request, journey, hand_back_form=form)
    try:
        journey_hand_back(
            journey_id=journey.pk,
            user=request.user,
            note=form.cleaned_data["note"],
            force=form.cleaned_data["force"],
            then=form.cleaned_data["then"] or "continue",
        )
    except NotAllowed as exc:
        return _refused(request, str(exc), journey)
    except ControlError as exc:
        messages.error(request, str(exc))
    else:
        waits = form.cleaned_data["then"] == "wait_for_customer"
        messages.success(
            request,
            f"J-{journey.pk} is back with the agent" + (", which waits for the customer's reply." if waits else "."),
        )
    return _back(request, journey.pk)


@require_POST
@login_required
def send_message(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    if refused := _precondition(request, journey, need="control"):
        return refused
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _invalid(request, journey, message_form=form)
    try:
        proposal = person_send_message(
            journey_id=journey.pk,
            user=request.user,
            text=form.cleaned_data["text"],
            key=form.cleaned_data["key"],
        )
    except NotAllowed as exc:
        return _refused(request, str(exc), journey)
    except ControlError as exc:
        messages.error(request, str(exc))
    except ActionParamsError as exc:
        form.add_error("text", str(exc))
        return _invalid(request, journey, message_form=form)
    else:
        _tell_outcome(request, proposal)
    return _back(request, journey.pk)


@require_POST
@login_required
def propose(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    if refused := _precondition(request, journey, need="control"):
        return refused
    form = ProposeForm(request.POST, journey=journey)
    if not form.is_valid():
        return _invalid(request, journey, propose_form=form)
    data = form.cleaned_data
    try:
        proposal = person_propose(
            journey_id=journey.pk,
            user=request.user,
            action=data["action"],
            params=data["params"],
            explanation=data["explanation"],
            key=data["key"],
        )
    except NotAllowed as exc:
        return _refused(request, str(exc), journey)
    except ControlError as exc:
        messages.error(request, str(exc))
    except ActionParamsError as exc:
        form.add_error(None, str(exc))
        return _invalid(request, journey, propose_form=form)
    else:
        _tell_outcome(request, proposal)
    return _back(request, journey.pk)


def _tell_outcome(request: ConsoleRequest, proposal: ProposedAction) -> None:
    name = proposal.action_type.name
    status = proposal.status
    if status == ProposedAction.Status.EXECUTED:
        messages.success(request, f"{name}: done ({proposal.decision_explanation})")
    elif status == ProposedAction.Status.PENDING:
        messages.info(request, f"{name} needs approval: {proposal.decision_explanation}")
    elif status == ProposedAction.Status.DENIED:
        messages.error(request, f"{name} was denied by policy: {proposal.decision_explanation}")
    elif status == ProposedAction.Status.FAILED:
        messages.error(request, f"{name} failed: {proposal.error}")
    else:  # auto-approved but the core system was unavailable: the runtime retries it
        messages.warning(request, f"{name} is approved but the core system is unavailable; it will be retried.")


@require_POST
@login_required
def execute_approved(request: ConsoleRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    try:
        done = person_execute_approved(journey_id=journey.pk, user=request.user)
    except NotAllowed as exc:
        return _refused(request, str(exc), journey)
    except ControlError as exc:
        messages.error(request, str(exc))
    else:
        for proposal in done:
            _tell_outcome(request, proposal)
    return _back(request, journey.pk)


@require_POST
@login_required
def withdraw(request: ConsoleRequest, pk: int) -> HttpResponse:
    proposal = selectors.visible_proposal(request.user, pk)
    if proposal is None:
        raise Http404("No such proposal.")
    if refused := _precondition(request, proposal.journey, need="control"):
        return refused
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        journey = get_journey_for_user(request.user, proposal.journey_id)
        return _invalid(request, journey)
    try:
        proposal_withdraw(proposal_id=proposal.pk, user=request.user, reason=form.cleaned_data["reason"])
    except NotAllowed as exc:
        return _refused(request, str(exc))
    except ControlError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Proposal withdrawn.")
    return _back(request, proposal.journey_id)


# --- the stop button -------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def stop_button(request: ConsoleRequest) -> HttpResponse:
    pausable = selectors.pausable_definitions(request.user)
    if not pausable:
        raise Http404("You may not pause agents.")
    may_pause_all = may_pause(request.user, None)
    form = PauseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not form.is_valid():
            return _stop_button_page(request, pausable, may_pause_all, form, status=400)
        data = form.cleaned_data
        target = _pause_target(data["scope"], pausable)
        if target is None:
            form.add_error("scope", "You may not pause that.")
            return _stop_button_page(request, pausable, may_pause_all, form, status=400)
        label = _pause_label(**target)
        try:
            if data["op"] == "pause":
                agents_pause(user=request.user, reason=data["reason"], **target)
                messages.success(request, f"Paused: {label}.")
            else:
                agents_resume(user=request.user, reason=data["reason"], **target)
                messages.success(request, f"Resumed: {label}.")
        except NotAllowed as exc:
            return _refused(request, str(exc))
        except ControlError as exc:
            form.add_error(None, str(exc))
            return _stop_button_page(request, pausable, may_pause_all, form, status=409)
        return redirect("agents_stop_button")
    return _stop_button_page(request, pausable, may_pause_all, form)


def _pause_target(scope: str, pausable: list[JourneyDefinition]) -> dict | None:
    """The grain a stop-button form names: ``all``, a definition key, ``agent:<id>`` or
    ``action:<key>``; None when it names nothing (or a definition this person may not pause).
    Everything, an agent or an action type cut across definitions: the service refuses them to
    anyone who may not pause every definition."""
    if scope == "all":
        return {}
    if scope.startswith("agent:"):
        pk = scope.removeprefix("agent:")
        agent = selectors.agent_by_id(int(pk)) if pk.isdigit() and len(pk) < 18 else None
        return {"agent": agent} if agent else None
    if scope.startswith("action:"):
        action_type = selectors.action_type_by_key(scope.removeprefix("action:"))
        return {"action_type": action_type} if action_type else None
    definition = next((d for d in pausable if d.key == scope), None)
    return {"definition": definition} if definition else None


def _pause_label(*, definition=None, agent=None, action_type=None) -> str:
    if definition is not None:
        return f"agents on {definition.name}"
    if agent is not None:
        return f"agent {agent.name}"
    if action_type is not None:
        return f"agents' {action_type.name} proposals (they wait for a person)"
    return "every agent on every definition"


def _stop_button_page(
    request: ConsoleRequest,
    pausable: list[JourneyDefinition],
    may_pause_all: bool,
    form: PauseForm,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "may_pause_all": may_pause_all,
        **selectors.stop_button_page(pausable, may_pause_all=may_pause_all),
    }
    return render(request, "console/stop_button.html", context, status=status)
