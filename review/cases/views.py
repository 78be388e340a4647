"""The exception workbench: groups ranked by size and recency, cases, annotations, labels."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.navigation import menu_page
from journeys.access import definitions_for, get_journey_for_user
from journeys.rights import Right

from ..models import Annotation, ExceptionCase, Label
from . import services
from .access import (
    cases_for,
    eligible_assignees,
    get_case_for_user,
    get_event_for_user,
    get_group_for_user,
    groups_for,
    may_annotate,
    may_edit_labels,
)
from .forms import AnnotateForm, AssignForm, FlagForm, LabelForm, ResolveForm, WorkbenchFilter

READ_ONLY = "You may see these cases but not change them: that needs the annotate permission on this journey."


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "review/cases/forbidden.html", {"message": READ_ONLY}, status=403)


@require_GET
@login_required
@menu_page("cases:workbench")
def workbench(request: HttpRequest) -> HttpResponse:
    form = WorkbenchFilter(request.GET or None, user=request.user)
    groups = groups_for(request.user).select_related("definition")
    show_all = False
    if form.is_valid():
        if form.cleaned_data.get("definition"):
            groups = groups.filter(definition=form.cleaned_data["definition"])
        show_all = form.cleaned_data.get("show") == "all"
    elif form.is_bound:
        groups = groups.none()
    unresolved = ~Q(cases__status=ExceptionCase.Status.RESOLVED)
    groups = groups.annotate(
        open_count=Count("cases", filter=unresolved),
        total=Count("cases"),
        last_seen=Max("cases__opened_at"),
        last_open=Max("cases__opened_at", filter=unresolved),
    )
    groups = groups.filter(total__gt=0) if show_all else groups.filter(open_count__gt=0)
    # Ranked by how many cases wait, then by how recently the group was seen.
    order = ["-total", "-last_seen"] if show_all else ["-open_count", "-last_open"]
    page = Paginator(groups.order_by(*order, "pk"), 30).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "show_all": show_all,
        "open_total": cases_for(request.user).unresolved().count(),
    }
    return render(request, "review/cases/workbench.html", context)


def _group_context(request: HttpRequest, group, **forms) -> dict:
    cases = (
        cases_for(request.user)
        .filter(group=group)
        .select_related("journey", "assignee", "resolved_by")
        .order_by("status", "-opened_at", "-pk")
    )
    editable = may_annotate(request.user, group.definition)
    assignees = eligible_assignees(group.definition)
    open_count = cases.exclude(status=ExceptionCase.Status.RESOLVED).count()
    return {
        "group": group,
        "cases": cases[:200],
        "case_count": cases.count(),
        "open_count": open_count,
        "has_open": open_count > 0,  # assign and resolve act on unresolved cases only
        "editable": editable,
        "annotate_form": forms.get("annotate_form") or AnnotateForm(),
        "assign_form": forms.get("assign_form") or AssignForm(assignees=assignees),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
        "annotations": Annotation.objects.filter(case__group=group, case__in=cases)
        .select_related("author", "case")
        .prefetch_related("labels")[:50],
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
    unresolved = list(cases_for(request.user, Right.ANNOTATE).filter(group=group).unresolved().order_by("pk"))
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
    assignees = eligible_assignees(case.journey.definition)
    return {
        "case": case,
        "journey": case.journey,
        # Newest first, as on the journey's timeline.
        "events": case.events.select_related("actor_user", "actor_agent").order_by("-id"),
        "annotations": case.annotations.select_related("author").prefetch_related("labels"),
        "editable": may_annotate(request.user, case.journey.definition),
        "has_open": not case.is_resolved,
        "annotate_form": forms.get("annotate_form") or AnnotateForm(),
        "assign_form": forms.get("assign_form") or AssignForm(assignees=assignees),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
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
        "form": form,
        "annotations": event.annotations.select_related("author").prefetch_related("labels"),
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
    return render(request, "review/cases/flag.html", {"journey": journey, "form": form}, status=400)


# --- the label taxonomy ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def label_list(request: HttpRequest) -> HttpResponse:
    editable = may_edit_labels(request.user)
    if not editable and not definitions_for(request.user).exists():
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
    labels = Label.objects.annotate(uses=Count("annotations")).order_by("-is_active", "name")
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
        {"form": form, "edit_forms": edit_forms, "editable": editable},
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
    label = Label.objects.filter(pk=pk).first()
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
