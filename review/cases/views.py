"""The exception workbench: groups ranked by size and recency, cases, annotations, labels."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.navigation import menu_page
from console.polling import live_poll
from console.selectors import read_choices
from journeys.access import get_journey_for_user, may_see_any

from .. import selectors
from ..models import ExceptionCase
from . import services
from .access import (
    eligible_assignees,
    get_case_for_user,
    get_event_for_user,
    get_group_for_user,
    may_annotate,
    may_edit_labels,
)
from .forms import AnnotateForm, AssignForm, FlagForm, LabelForm, ResolveForm, WorkbenchFilter

WORKBENCH_POLL_SECONDS = 5
READ_ONLY = "You may see these cases but not change them: that needs the annotate permission on this journey."


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "review/cases/forbidden.html", {"message": READ_ONLY}, status=403)


@require_GET
@login_required
@menu_page("cases:workbench")
def workbench(request: HttpRequest) -> HttpResponse:
    """The groups, largest first, kept current by the live poll: 204 while the marker (cases
    opened and resolved on the chosen definitions, and the minute) stays the same."""
    form = WorkbenchFilter(request.GET or None, user=request.user)
    valid = form.is_valid() or not form.is_bound
    data = form.cleaned_data if form.is_bound and valid else {}
    definition = data.get("definition")
    marker = selectors.workbench_marker(request.user, definition)
    query = request.GET.copy()
    query.pop("cursor", None)

    def context() -> dict:
        return {
            "form": read_choices(form),
            "page": selectors.workbench_page(
                request.user,
                definition=definition,
                show_all=data.get("show") == "all",
                valid=valid,
                page=request.GET.get("page"),
            ),
            "show_all": data.get("show") == "all",
            "open_total": selectors.open_case_count(request.user),
            "cursor": marker,
            "query": query.urlencode(),
            "poll_seconds": WORKBENCH_POLL_SECONDS,
        }

    return live_poll(
        request,
        marker=marker,
        sent=request.GET.get("cursor"),
        page="review/cases/workbench.html",
        fragment="review/cases/workbench.html#workbench",
        context=context,
    )


def _forms(forms: dict, assignees) -> dict:
    """The annotate, assign and resolve forms (bound ones keep their errors), options read."""
    return {
        "annotate_form": read_choices(forms.get("annotate_form") or AnnotateForm()),
        "assign_form": read_choices(forms.get("assign_form") or AssignForm(assignees=assignees)),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
    }


def _group_context(request: HttpRequest, group, **forms) -> dict:
    selectors.with_step_titles([group])
    page = selectors.group_page(request.user, group)
    return {
        "group": group,
        **page,
        "has_open": page["open_count"] > 0,  # assign and resolve act on unresolved cases only
        "editable": may_annotate(request.user, group.definition),
        **_forms(forms, eligible_assignees(group.definition)),
    }


@require_GET
@login_required
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_group_for_user(request.user, pk)
    return render(request, "review/cases/group.html", _group_context(request, group))


@require_POST
@login_required
def group_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    group = get_group_for_user(request.user, pk)
    if not may_annotate(request.user, group.definition):
        return _forbidden(request)
    unresolved = selectors.group_unresolved(request.user, group)
    form, done = _apply(request, action, unresolved, assignees=eligible_assignees(group.definition), group=True)
    if done is not None:
        messages.success(request, done)
        return redirect("cases:group", pk=group.pk)
    return render(
        request,
        "review/cases/group.html",
        _group_context(request, group, **{f"{action}_form": form}),
        status=400,
    )


def _apply(request: HttpRequest, action: str, cases: list[ExceptionCase], *, assignees, group: bool):
    """Validate the action's form and run its service. Returns (form, success message or None)."""
    user = request.user
    forms_by_action = {
        "annotate": lambda: AnnotateForm(request.POST),
        "assign": lambda: AssignForm(request.POST, assignees=assignees),
        "resolve": lambda: ResolveForm(request.POST),
    }
    if action not in forms_by_action:
        raise Http404("No such action.")
    form = forms_by_action[action]()
    if not form.is_valid():
        return form, None
    data = form.cleaned_data
    try:
        if action == "annotate":
            count = services.group_annotate(cases=cases, actor=user, note=data["note"], labels=data["labels"])
            return form, f"Annotated {count} case(s)." if group else "Annotation added."
        if action == "assign":
            count = services.group_assign(cases=cases, assignee=data["assignee"], actor=user)
            return form, f"Assigned {count} case(s) to {data['assignee'].get_username()}."
        count = services.group_resolve(cases=cases, resolution=data["resolution"], note=data["note"], actor=user)
        return form, f"Resolved {count} case(s)."
    except services.CaseError as exc:
        form.add_error(None, str(exc))
        return form, None


def _case_context(request: HttpRequest, case: ExceptionCase, **forms) -> dict:
    selectors.with_step_titles([case.group])
    return {
        "case": case,
        "journey": case.journey,
        **selectors.case_page(case),
        "editable": may_annotate(request.user, case.journey.definition),
        "has_open": not case.is_resolved,
        **_forms(forms, eligible_assignees(case.journey.definition)),
    }


@require_GET
@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    return render(request, "review/cases/case.html", _case_context(request, case))


@require_POST
@login_required
def case_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    case = get_case_for_user(request.user, pk)
    if not may_annotate(request.user, case.journey.definition):
        return _forbidden(request)
    if action in {"resolve", "assign"} and case.is_resolved:
        # The page no longer offers these forms; a stale tab or a forged POST is told why.
        messages.error(request, f"Case {case.pk} is already resolved.")
        return render(request, "review/cases/case.html", _case_context(request, case), status=409)
    form, done = _apply(request, action, [case], assignees=eligible_assignees(case.journey.definition), group=False)
    if done is not None:
        messages.success(request, done)
        return redirect("cases:case", pk=case.pk)
    return render(
        request,
        "review/cases/case.html",
        _case_context(request, case, **{f"{action}_form": form}),
        status=400,
    )


@require_http_methods(["GET", "POST"])
@login_required
def event_annotate(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_event_for_user(request.user, pk)
    if not may_annotate(request.user, event.journey.definition):
        return _forbidden(request)
    form = AnnotateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.annotation_add(
                actor=request.user,
                event=event,
                note=form.cleaned_data["note"],
                labels=form.cleaned_data["labels"],
            )
        except services.CaseError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Annotation added.")
            return redirect(reverse("journey_detail", args=[event.journey_id]))
    context = {
        "event": event,
        "journey": event.journey,
        "form": read_choices(form),
        "annotations": selectors.event_annotations(event),
    }
    return render(request, "review/cases/event_annotate.html", context, status=400 if form.is_bound else 200)


@require_POST
@login_required
def journey_flag(request: HttpRequest, pk: int) -> HttpResponse:
    journey = get_journey_for_user(request.user, pk)
    if not may_annotate(request.user, journey.definition):
        return _forbidden(request)
    form = FlagForm(request.POST)
    if form.is_valid():
        try:
            case = services.journey_flag(
                journey=journey,
                actor=request.user,
                note=form.cleaned_data["note"],
                labels=form.cleaned_data["labels"],
            )
        except services.CaseError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"J-{journey.pk} flagged: case {case.pk} opened.")
            return redirect("cases:case", pk=case.pk)
    return render(request, "review/cases/flag.html", {"journey": journey, "form": read_choices(form)}, status=400)


# --- the label taxonomy ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def label_list(request: HttpRequest) -> HttpResponse:
    editable = may_edit_labels(request.user)
    if not editable and not may_see_any(request.user):
        raise Http404("No such page.")
    form = LabelForm(request.POST or None)
    if request.method == "POST":
        if not editable:
            return render(
                request,
                "review/cases/forbidden.html",
                {"message": "Only admins edit the label taxonomy."},
                status=403,
            )
        if form.is_valid():
            try:
                label = services.label_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                )
            except services.CaseError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(request, f"Label “{label.name}” added.")
                return redirect("cases:labels")
    labels = selectors.labels_in_use()
    edit_forms = [
        (
            label,
            LabelForm(
                initial={
                    "name": label.name,
                    "description": label.description,
                    "is_active": label.is_active,
                },
                prefix=f"l{label.pk}",
            ),
        )
        for label in labels
    ]
    return render(
        request,
        "review/cases/labels.html",
        {"form": read_choices(form), "edit_forms": edit_forms, "editable": editable},
        status=400 if form.is_bound else 200,
    )


@require_POST
@login_required
def label_edit(request: HttpRequest, pk: int) -> HttpResponse:
    if not may_edit_labels(request.user):
        return render(
            request,
            "review/cases/forbidden.html",
            {"message": "Only admins edit the label taxonomy."},
            status=403,
        )
    label = selectors.label_or_none(pk)
    if label is None:
        raise Http404("No such label.")
    try:
        if request.POST.get("delete"):
            services.label_delete(actor=request.user, label=label)
            messages.success(request, f"Label “{label.name}” deleted.")
            return redirect("cases:labels")
        form = LabelForm(request.POST, prefix=f"l{label.pk}")
        if not form.is_valid():
            messages.error(request, "A label needs a name of at most 80 characters.")
            return redirect("cases:labels")
        services.label_update(
            actor=request.user,
            label=label,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            is_active=form.cleaned_data["is_active"],
        )
    except services.CaseError as exc:
        messages.error(request, str(exc))
        return redirect("cases:labels")
    messages.success(request, "Label saved.")
    return redirect("cases:labels")
