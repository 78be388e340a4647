"""Read-side queries of the console's pages, next to the services that write.

Views call these and hand evaluated results to templates: no query runs while a template renders
(``tests/test_render_queries.py``), and template tags never query the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from console.polling import marker_stamp
from journeys.access import definitions_for, journeys_for
from journeys.control import assignable_members, desk_journeys, desk_order, may_force_hand_back
from journeys.models import ActionType, Agent, AgentPause, Journey, JourneyDefinition, ProposedAction
from journeys.rights import Right
from review.services.grants import grant_state


def read_choices(form: forms.Form) -> forms.Form:
    """Read every model choice field's options now, in the view: rendering the form then lists
    them without a query. Validation still checks a submitted value against the queryset."""
    for field in form.fields.values():
        if isinstance(field, forms.ModelChoiceField):
            field.choices = list(field.choices)
    return form


# --- the live board -----------------------------------------------------------------------------

# Only what the board shows: the context JSON can be large and is never needed here.
BOARD_FIELDS = (
    "id",
    "customer_ref",
    "status",
    "waiting_on",
    "current_step",
    "sla_deadline",
    "state_changed_at",
    "updated_at",
    "controller_user_id",
    "agent_id",
    "definition_id",
    "version_id",
    "needs_person_reason",
    "finished_at",
    "definition__name",
    "definition__key",
    "definition__fallback_queue",
    "agent__name",
    "controller_user__username",
)


def visible_definitions(user: Any) -> list[tuple[int, str, str]]:
    """(pk, key, name) of every definition ``user`` may view, by name."""
    return list(definitions_for(user).order_by("name").values_list("pk", "key", "name"))


def agent_names() -> list[str]:
    return list(Agent.objects.order_by("name").values_list("name", flat=True))


def waiting_on_person_q() -> Q:
    """Live journeys a person must act on: pending approvals, and fallbacks nobody has picked up."""
    return Q(status=Journey.Status.WAITING_APPROVAL) | Q(status=Journey.Status.HUMAN, controller_user__isnull=True)


def board_marker(definition_ids: list[int], now: datetime | None = None) -> str:
    """A short string that changes whenever anything on the user's board may have changed."""
    newest = Journey.objects.filter(definition_id__in=definition_ids).aggregate(m=Max("updated_at"))["m"]
    # A pause or resume changes no journey row, yet the board marks paused journeys.
    pauses = AgentPause.objects.aggregate(n=Count("id"), resumed=Count("resumed_at"))
    minute = int((now or timezone.now()).timestamp() // 60)
    stamp = int(newest.timestamp() * 1_000_000) if newest else 0
    return f"j{marker_stamp(stamp)}-p{pauses['n']}.{pauses['resumed']}-m{minute:x}"


def _live(definition_ids: list[int]) -> QuerySet[Journey]:
    return Journey.objects.filter(definition_id__in=definition_ids, status__in=Journey.LIVE_STATUSES)


def board_counts(definition_ids: list[int], *, agent: str = "") -> list[dict[str, Any]]:
    """Live journeys per definition and status (narrowed to ``agent``), with how many wait on a
    person and how many are past their SLA: one grouped query for every number on the board.

    Counting a column of the covering index (sla_deadline, never NULL) instead of id lets the
    counters come from an index-only scan rather than from the wide rows."""
    live = _live(definition_ids)
    if agent:
        live = live.filter(agent__name=agent)
    breached_q = Q(sla_deadline__lt=timezone.now())
    return list(
        live.values("definition_id", "status")
        .annotate(
            n=Count("sla_deadline"),
            waiting=Count("sla_deadline", filter=waiting_on_person_q()),
            breached=Count("sla_deadline", filter=breached_q),
            breached_waiting=Count("sla_deadline", filter=breached_q & waiting_on_person_q()),
        )
        .order_by()
    )


def board_rows(
    definition_ids: list[int],
    *,
    valid: bool = True,
    definition_id: int | None = None,
    status: str = "",
    agent: str = "",
    needs_person: bool = False,
) -> QuerySet[Journey]:
    """The board's rows, most urgent SLA first, only the columns it shows (a paginator slices
    them). ``valid=False`` (filters that did not validate) gives none."""
    rows = _live(definition_ids)
    if not valid:
        return rows.none()
    if definition_id:
        rows = rows.filter(definition_id=definition_id)
    if status:
        rows = rows.filter(status=status)
    if agent:
        rows = rows.filter(agent__name=agent)
    if needs_person:
        rows = rows.filter(waiting_on_person_q())
    return (
        rows.select_related("definition", "agent", "controller_user")
        .prefetch_related("version")
        .only(*BOARD_FIELDS)
        .order_by("sla_deadline", "id")
    )


@dataclass
class BoardPauses:
    """Every active pause, read in one query. ``definitions`` is None when everything is paused."""

    definitions: set[int] | None
    agents: set[int]
    grains: list[AgentPause]  # agent and action-type pauses cut across definitions: named with who and why


def board_pauses() -> BoardPauses:
    active = list(AgentPause.objects.active().select_related("agent", "action_type", "paused_by"))
    everything = any(p.definition_id is None and p.agent_id is None and p.action_type_id is None for p in active)
    return BoardPauses(
        definitions=None if everything else {p.definition_id for p in active if p.definition_id},
        agents={p.agent_id for p in active if p.agent_id},
        grains=[p for p in active if p.agent_id or p.action_type_id],
    )


def mark_paused(journeys: list[Journey], pauses: BoardPauses) -> list[Journey]:
    for journey in journeys:
        journey.agents_paused = (
            pauses.definitions is None
            or journey.definition_id in pauses.definitions
            or journey.agent_id in pauses.agents
        )
    return journeys


# --- the desks' work queue ------------------------------------------------------------------------

DESK_SIZE = 200  # the page shows the most urgent items; "Claim next" always sees them all


def desk_items(user: Any) -> list[Journey]:
    """The most urgent journeys on ``user``'s desks, each with who it may be assigned to
    (``assignees``) and whether ``user`` may release it (``may_release``)."""
    items = list(desk_order(desk_journeys(user)).select_related("definition", "version", "controller_user")[:DESK_SIZE])
    members_by_definition: dict[int, list] = {}
    for journey in items:
        if journey.definition_id not in members_by_definition:
            members_by_definition[journey.definition_id] = assignable_members(user, journey.definition)
        journey.assignees = members_by_definition[journey.definition_id]
        journey.may_release = journey.controller_user_id == user.pk or (
            journey.controller_user_id is not None and may_force_hand_back(user, journey.definition)
        )
    return items


def desk_journey_ids(user: Any) -> list[int]:
    return list(desk_journeys(user).values_list("pk", flat=True))


def assignable_people(user: Any, definition: Any) -> QuerySet:
    """Team members ``user`` may assign a journey of ``definition`` to, as a queryset for a form."""
    members = [m.pk for m in assignable_members(user, definition)]
    return get_user_model().objects.filter(pk__in=members).order_by("username")


def definitions_by_name(user: Any) -> list[Any]:
    """The definitions ``user`` may view, by name (the metrics pages measure them all)."""
    return list(definitions_for(user).order_by("name"))


# --- the team permissions page ---------------------------------------------------------------


def all_definitions() -> list[Any]:
    return list(JourneyDefinition.objects.all())


def team_name_taken(name: str) -> bool:
    return Group.objects.filter(name__iexact=name).exists()


def active_user(username: str) -> Any:
    return get_user_model().objects.filter(username=username, is_active=True).first()


def teams_overview() -> list[dict[str, Any]]:
    """Every team with its members and the definitions it holds any grant on."""
    teams = []
    for team in Group.objects.order_by("name").prefetch_related("user_set"):
        state = grant_state(team=team)
        teams.append(
            {
                "team": team,
                "members": sorted(team.user_set.all(), key=lambda u: u.username),
                "definitions": [k for k, v in state.items() if v["perms"]],
            }
        )
    return teams


def agents_with_users() -> list[Agent]:
    return list(Agent.objects.select_related("user"))


def team_or_none(pk: int) -> Group | None:
    return Group.objects.filter(pk=pk).first()


def team_member_list(team: Group) -> list[Any]:
    return list(team.user_set.order_by("username"))


def team_member(team: Group, user_id: int) -> Any:
    return team.user_set.filter(pk=user_id).first()


def agent_or_none(pk: int) -> Agent | None:
    return Agent.objects.select_related("user").filter(pk=pk).first()


def organisation_grants(team: Group) -> list[Any]:
    """The team's organisation-wide grants (audit everything, the global stop button)."""
    return list(team.organisation_grants.all())


def pending_organisation_changes(team: Group) -> list[Any]:
    """Requests to widen the team's organisation-wide rights or members that wait for a second admin."""
    from review.models import GovernanceChange

    return list(
        GovernanceChange.objects.filter(
            kind=GovernanceChange.Kind.ORG_GRANT,
            target_id=team.pk,
            status=GovernanceChange.Status.PENDING,
            expires_at__gt=timezone.now(),
        ).select_related("maker")
    )


def desk_marker(user: Any, now: datetime | None = None) -> str:
    """Changes when the desk may show something else: a journey arrives on or leaves ``user``'s
    desks, or one of them changes what the desk shows (claimed, assigned, released — each moves
    the journey's ``updated_at``), and each minute, so "on the desk" and "SLA" age."""
    agg = desk_journeys(user).aggregate(n=Count("pk"), newest=Max("updated_at"))
    stamp = int(agg["newest"].timestamp() * 1_000_000) if agg["newest"] else 0
    minute = int((now or timezone.now()).timestamp() // 60)
    return f"d{agg['n']:x}.{marker_stamp(stamp)}-m{minute:x}"


# --- the stop button and the control forms -----------------------------------------------------


def pausable_definitions(user: Any) -> list[JourneyDefinition]:
    """The definitions ``user`` may pause agents on, by name."""
    return list(definitions_for(user, Right.PAUSE).order_by("name"))


def agent_by_id(pk: int) -> Agent | None:
    return Agent.objects.filter(pk=pk).first()


def action_type_by_key(key: str) -> ActionType | None:
    return ActionType.objects.filter(key=key).first()


def visible_proposal(user: Any, pk: int) -> ProposedAction | None:
    """The proposal on a journey ``user`` may see, or None."""
    return ProposedAction.objects.filter(pk=pk, journey__in=journeys_for(user)).first()


def stop_button_page(pausable: list[JourneyDefinition], *, may_pause_all: bool) -> dict[str, Any]:
    """The stop button's rows: each pausable definition with its pause and live journeys, the
    agents and writing action types (for whoever may pause everything), and the last 50 pauses."""
    active_pauses = list(AgentPause.objects.active().select_related("paused_by", "agent", "action_type"))
    active = {p.definition_id: p for p in active_pauses if p.agent_id is None and p.action_type_id is None}
    visible_ids = [d.pk for d in pausable]
    scopes = [{"key": d.key, "name": d.name, "pause": active.get(d.pk)} for d in pausable]
    live = dict(
        Journey.objects.live()
        .filter(definition_id__in=visible_ids)
        .values_list("definition_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for scope, definition in zip(scopes, pausable, strict=True):
        scope["live"] = live.get(definition.pk, 0)
    agent_pauses = {p.agent_id: p for p in active_pauses if p.agent_id}
    type_pauses = {p.action_type_id: p for p in active_pauses if p.action_type_id}
    agents = (
        [{"agent": a, "pause": agent_pauses.get(a.pk)} for a in Agent.objects.order_by("name")] if may_pause_all else []
    )
    action_types = (
        [
            {"action_type": t, "pause": type_pauses.get(t.pk)}
            for t in ActionType.objects.filter(is_read_only=False).order_by("name")
        ]
        if may_pause_all
        else []
    )
    history = AgentPause.objects.filter(definition_id__in=visible_ids)
    if may_pause_all:
        history |= AgentPause.objects.filter(definition__isnull=True)
    history = history.select_related("definition", "agent", "action_type", "paused_by", "resumed_by")[:50]
    return {
        "scopes": scopes,
        "global_pause": active.get(None),
        "agents": agents,
        "action_types": action_types,
        "history": list(history),
    }
