"""The team permissions page: admins manage teams (groups), members and per-definition grants,
and the grants of agents (service users). Reads come from ``console/selectors.py``; every change
goes through ``review.services.grants``, to the audit trail with before and after, through
``journeys.events.governance_changed`` inside the changing transaction."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from journeys import rights
from journeys.models import Agent, OrganisationGrant
from journeys.rights import Right
from review.access import may_manage_teams
from review.services import grants
from review.services.governance import GovernanceError, org_grant_submit, org_member_request
from review.services.grants import PERM_CODES, grant_state, grants_save, team_membership_change

from . import selectors

PERM_LABELS = rights.PERM_LABELS  # the teams page's columns, from the one registry of rights
APPROVE_CODE = Right.APPROVE.codename
MAX_LIMIT = Decimal("9999999999.99")


def team_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_manage_teams(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


# --- reading grants -------------------------------------------------------------------------


def _matrix(state: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for definition in selectors.all_definitions():
        entry = state[definition.key]
        rows.append(
            {
                "definition": definition,
                "perms": [{"code": c, "label": PERM_LABELS.get(c, c), "on": c in entry["perms"]} for c in PERM_CODES],
                "limit": entry["limit"] or "",
                "sensitive": entry["sensitive"],
            }
        )
    return rows


def _parse_grants(post: Any, *, with_team_extras: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
    wanted: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for definition in selectors.all_definitions():
        perms = [c for c in PERM_CODES if post.get(f"perm:{definition.pk}:{c}") == "on"]
        limit_text = (post.get(f"limit:{definition.pk}") or "").strip() if with_team_extras else ""
        limit = None
        if limit_text:
            try:
                amount = Decimal(limit_text)
            except InvalidOperation:
                errors.append(f"{definition.name}: the approval limit must be an amount, e.g. 500.00.")
                amount = None
            if amount is not None and (not amount.is_finite() or not 0 <= amount <= MAX_LIMIT):
                errors.append(f"{definition.name}: the approval limit must be between 0 and {MAX_LIMIT}.")
            elif amount is not None:
                limit = str(amount.quantize(Decimal("0.01")))
        if limit is not None and APPROVE_CODE not in perms:
            errors.append(f"{definition.name}: an approval limit needs the Approve grant.")
        wanted[definition.key] = {
            "perms": perms,
            "limit": limit if APPROVE_CODE in perms else None,
            "sensitive": with_team_extras and post.get(f"sensitive:{definition.pk}") == "on",
        }
    return wanted, errors


def _save_grants(request: HttpRequest, holder: Any, label: str, *, is_team: bool) -> tuple[list[str], list[Any]]:
    """Apply the posted matrix. Returns form errors (nothing changed), or no errors and the
    governance changes requested: per definition, a change that adds approve, unmask or pause
    rights or raises an approval limit waits for a second admin; any other change applies at
    once, audited."""
    wanted, errors = _parse_grants(request.POST, with_team_extras=is_team)
    if errors:
        return errors, []
    requested = grants_save(holder=holder, label=label, wanted=wanted, is_team=is_team, actor=request.user)
    return [], requested


def _tell_saved(request: HttpRequest, name: str, requested: list[Any]) -> None:
    if not requested:
        messages.success(request, f"Grants of {name} saved.")
        return
    what = "; ".join(change.subject for change in requested)
    messages.warning(
        request,
        f"Grants of {name} saved, except what widens rights — it waits for a second admin to approve it "
        f"(Governance changes): {what}.",
    )


# --- views ----------------------------------------------------------------------------------


class TeamForm(forms.Form):
    name = forms.CharField(max_length=150, label="New team name")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if selectors.team_name_taken(name):
            raise forms.ValidationError("A team with this name already exists.")
        return name


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="Add a member (username)")

    def clean_username(self) -> Any:
        username = self.cleaned_data["username"].strip()
        user = selectors.active_user(username)
        if user is None:
            raise forms.ValidationError(f"No active user “{username}”.")
        if hasattr(user, "agent"):
            raise forms.ValidationError("Agents hold their own grants; they are not team members.")
        return user


def _teams_context(form: TeamForm | None = None) -> dict[str, Any]:
    return {
        "teams": selectors.teams_overview(),
        "agents": selectors.agents_with_users(),
        "form": form or TeamForm(),
    }


@require_GET
@team_admin_required
def team_list(request: HttpRequest) -> HttpResponse:
    return render(request, "console/teams.html", _teams_context())


@require_POST
@team_admin_required
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST)
    if not form.is_valid():
        return render(request, "console/teams.html", _teams_context(form), status=400)
    team = grants.team_create(name=form.cleaned_data["name"], actor=request.user)
    messages.success(request, f"Team {team.name} created; give it grants below.")
    return redirect("team_detail", pk=team.pk)


def _team_or_404(pk: int) -> Group:
    team = selectors.team_or_none(pk)
    if team is None:
        raise Http404("No such team.")
    return team


def _team_context(
    team: Group,
    *,
    errors: list[str] | None = None,
    member_form: MemberForm | None = None,
    org_errors: list[str] | None = None,
) -> dict:
    organisation_grants = selectors.organisation_grants(team)
    held = {grant.right for grant in organisation_grants}
    return {
        "org_rights": [
            {"code": code, "label": label, "on": code in held} for code, label in OrganisationGrant.Right.choices
        ],
        "org_pending": selectors.pending_organisation_changes(team),
        "org_errors": org_errors or [],
        "team": team,
        "members": selectors.team_member_list(team),
        "organisation_grants": organisation_grants,
        "rows": _matrix(grant_state(team=team)),
        "perm_labels": [PERM_LABELS[c] for c in PERM_CODES],
        "unmask_label": Right.UNMASK.label,
        "errors": errors or [],
        "member_form": member_form or MemberForm(),
    }


@require_GET
@team_admin_required
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "console/teams_detail.html", _team_context(_team_or_404(pk)))


@require_POST
@team_admin_required
def team_grants(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team_or_404(pk)
    errors, requested = _save_grants(request, team, f"team {team.name}", is_team=True)
    if errors:
        return render(request, "console/teams_detail.html", _team_context(team, errors=errors), status=400)
    _tell_saved(request, team.name, requested)
    return redirect("team_detail", pk=team.pk)


@require_POST
@team_admin_required
def team_org_rights(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the team's organisation-wide rights: removing applies at once, adding waits for a
    second admin on the governance page."""
    team = _team_or_404(pk)
    wanted = [code for code, _ in OrganisationGrant.Right.choices if request.POST.get(f"org:{code}") == "on"]
    try:
        reason = request.POST.get("reason", "")
        _, pending = org_grant_submit(team=team, rights=wanted, actor=request.user, reason=reason)
    except GovernanceError as exc:
        return render(request, "console/teams_detail.html", _team_context(team, org_errors=[str(exc)]), status=400)
    if pending is None:
        messages.success(request, f"Organisation-wide rights of {team.name} saved.")
    else:
        messages.warning(
            request,
            f"Adding an organisation-wide right waits for a second admin to approve it (Governance changes): "
            f"{pending.subject}.",
        )
    return redirect("team_detail", pk=team.pk)


@require_POST
@team_admin_required
def team_member_add(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team_or_404(pk)
    form = MemberForm(request.POST)
    if not form.is_valid():
        return render(request, "console/teams_detail.html", _team_context(team, member_form=form), status=400)
    user = form.cleaned_data["username"]
    try:
        pending = org_member_request(team=team, user=user, actor=request.user)
    except GovernanceError as exc:
        form.add_error("username", str(exc))
        return render(request, "console/teams_detail.html", _team_context(team, member_form=form), status=400)
    if pending is not None:
        messages.warning(
            request,
            f"{team.name} holds rights that need a second admin (approve, pause, unmask, an approval limit or "
            f"organisation-wide rights), so adding {user.get_username()} waits for a second "
            f"admin to approve it (Governance changes).",
        )
        return redirect("team_detail", pk=team.pk)
    team_membership_change(team=team, user=user, actor=request.user, add=True)
    messages.success(request, f"{user.get_username()} is now in {team.name}.")
    return redirect("team_detail", pk=team.pk)


@require_POST
@team_admin_required
def team_member_remove(request: HttpRequest, pk: int, user_id: int) -> HttpResponse:
    team = _team_or_404(pk)
    user = selectors.team_member(team, user_id)
    if user is None:
        raise Http404("Not a member of this team.")
    team_membership_change(team=team, user=user, actor=request.user, add=False)
    messages.success(request, f"{user.get_username()} left {team.name}.")
    return redirect("team_detail", pk=team.pk)


@require_POST
@team_admin_required
def team_delete(request: HttpRequest, pk: int) -> HttpResponse:
    team = _team_or_404(pk)
    name = grants.team_delete(team=team, actor=request.user)
    messages.success(request, f"Team {name} deleted.")
    return redirect("team_list")


def _agent_or_404(pk: int) -> Agent:
    agent = selectors.agent_or_none(pk)
    if agent is None:
        raise Http404("No such agent.")
    return agent


def _agent_context(agent: Agent, errors: list[str] | None = None) -> dict[str, Any]:
    return {
        "agent": agent,
        "rows": _matrix(grant_state(user=agent.user)),
        "perm_labels": [PERM_LABELS[c] for c in PERM_CODES],
        "unmask_label": Right.UNMASK.label,
        "errors": errors or [],
    }


@require_GET
@team_admin_required
def agent_grants_page(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "console/teams_agent.html", _agent_context(_agent_or_404(pk)))


@require_POST
@team_admin_required
def agent_grants(request: HttpRequest, pk: int) -> HttpResponse:
    agent = _agent_or_404(pk)
    errors, requested = _save_grants(request, agent.user, f"agent {agent.name}", is_team=False)
    if errors:
        return render(request, "console/teams_agent.html", _agent_context(agent, errors), status=400)
    _tell_saved(request, agent.name, requested)
    return redirect("agent_grants_page", pk=agent.pk)
