"""The live board: every live journey the user may see, kept current by cheap polling.

The page polls with a *change marker* — the newest ``updated_at`` among the user's visible
journeys (any status: a journey that finishes is touched too), the pause history's size (a
pause changes no journey row) and a one-minute clock bucket so the "time in state" and "SLA
left" columns age. When the marker the browser sends back is the current one, the answer is an
empty 204 that htmx does not swap: two small indexed queries, no render.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from journeys.access import definitions_for
from journeys.models import Agent, AgentPause, Journey

from .polling import live_poll
from .views import ConsoleRequest

BOARD_PAGE_SIZE = 50
POLL_SECONDS = 1.5

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


class BoardFilter(forms.Form):
    definition = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "All live"), *[(s.value, s.label) for s in Journey.LIVE_STATUSES]],
    )
    agent = forms.ChoiceField(required=False)
    needs_person = forms.BooleanField(required=False, label="Needs a person")

    def __init__(self, *args, definitions: list[tuple[int, str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].choices = [
            ("", "All definitions"),
            *[(key, name) for _, key, name in definitions],
        ]
        self.fields["agent"].choices = [
            ("", "All agents"),
            *Agent.objects.order_by("name").values_list("name", "name"),
        ]
        self._definition_ids = {key: pk for pk, key, _ in definitions}

    def definition_id(self, key: str) -> int | None:
        return self._definition_ids.get(key)

    def apply(self, qs: QuerySet[Journey]) -> QuerySet[Journey]:
        data = self.cleaned_data
        if data.get("definition"):
            qs = qs.filter(definition_id=self._definition_ids[data["definition"]])
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("agent"):
            qs = qs.filter(agent__name=data["agent"])
        if data.get("needs_person"):
            qs = qs.filter(waiting_on_person_q())
        return qs


def waiting_on_person_q() -> Q:
    """Live journeys a person must act on: pending approvals, and fallbacks nobody has picked up."""
    return Q(status=Journey.Status.WAITING_APPROVAL) | Q(status=Journey.Status.HUMAN, controller_user__isnull=True)


def change_marker(definition_ids: list[int], now: datetime | None = None) -> str:
    """A short string that changes whenever anything on the user's board may have changed."""
    newest = Journey.objects.filter(definition_id__in=definition_ids).aggregate(m=Max("updated_at"))["m"]
    # A pause or resume changes no journey row, yet the board marks paused journeys.
    pauses = AgentPause.objects.aggregate(n=Count("id"), resumed=Count("resumed_at"))
    minute = int((now or timezone.now()).timestamp() // 60)
    stamp = int(newest.timestamp() * 1_000_000) if newest else 0
    # Hex with letters around it: a 16-digit decimal stamp reads as a card number to the masking
    # layer, which would mask the marker in the page and break every poll.
    return f"j{stamp:x}-p{pauses['n']}.{pauses['resumed']}-m{minute:x}"


def _facets(grouped: list[dict], form: BoardFilter, filters: dict) -> dict:
    """The board's counters from the grouped rows (already narrowed to the chosen agent).

    The total, "wait on a person" and "past SLA" follow every filter; the per-status counters
    follow every filter but the status, and the per-definition counters every filter but the
    definition, so each still shows where a click would lead.
    """
    definition_id = form.definition_id(filters.get("definition") or "")
    status = filters.get("status") or ""
    needs = bool(filters.get("needs_person"))
    by_status: Counter[str] = Counter()
    by_definition: Counter[int] = Counter()
    total = waiting = breached = 0
    for row in grouped:
        n = row["waiting"] if needs else row["n"]
        same_definition = not definition_id or row["definition_id"] == definition_id
        same_status = not status or row["status"] == status
        if same_definition:
            by_status[row["status"]] += n
        if same_status:
            by_definition[row["definition_id"]] += n
        if same_definition and same_status:
            total += n
            waiting += row["waiting"]
            breached += row["breached_waiting"] if needs else row["breached"]
    return {
        "by_status": by_status,
        "by_definition": by_definition,
        "total": total,
        "waiting": waiting,
        "breached": breached,
    }


def _visible_definitions(user) -> list[tuple[int, str, str]]:
    return list(definitions_for(user).order_by("name").values_list("pk", "key", "name"))


@require_GET
@login_required
def board(request: ConsoleRequest) -> HttpResponse:
    definitions = _visible_definitions(request.user)
    if not definitions:  # not in this person's menu either (navigation.NAV): the page is not theirs
        raise Http404("No journeys to show.")
    definition_ids = [pk for pk, _, _ in definitions]
    marker = change_marker(definition_ids)
    query = request.GET.copy()
    for key in ("page", "cursor"):
        query.pop(key, None)
    view = request.GET.copy()
    view.pop("cursor", None)
    return live_poll(
        request,
        marker=marker,
        sent=request.GET.get("cursor"),
        page="console/board.html",
        fragment="console/board.html#board",
        context=lambda: _board_context(request, definitions, marker, query.urlencode()),
        # Everything the fragment shows besides the marker: the definitions the user may see, the
        # filters and page asked for, and the time zone its times are written in.
        shared_key=f"{definition_ids}|{view.urlencode()}|{timezone.get_current_timezone_name()}",
    )


def _board_context(request: ConsoleRequest, definitions: list[tuple[int, str, str]], marker: str, filter_query: str):
    definition_ids = [pk for pk, _, _ in definitions]
    form = BoardFilter(request.GET or None, definitions=definitions)
    live = Journey.objects.filter(definition_id__in=definition_ids, status__in=Journey.LIVE_STATUSES)
    filters: dict = form.cleaned_data if form.is_valid() else {}
    counted = live.filter(agent__name=filters["agent"]) if filters.get("agent") else live
    # One grouped query for every number at the top of the board.
    # Counting a column of the covering index (sla_deadline, never NULL) instead of id lets the
    # counters come from an index-only scan rather than from the wide rows.
    breached_q = Q(sla_deadline__lt=timezone.now())
    grouped = list(
        counted.values("definition_id", "status")
        .annotate(
            n=Count("sla_deadline"),
            waiting=Count("sla_deadline", filter=waiting_on_person_q()),
            breached=Count("sla_deadline", filter=breached_q),
            breached_waiting=Count("sla_deadline", filter=breached_q & waiting_on_person_q()),
        )
        .order_by()
    )
    facets = _facets(grouped, form, filters)

    rows = live
    if form.is_valid():
        rows = form.apply(rows)
    elif form.is_bound:
        rows = rows.none()
    rows = (
        rows.select_related("definition", "agent", "controller_user")
        .prefetch_related("version")
        .only(*BOARD_FIELDS)
        .order_by("sla_deadline", "id")
    )
    paginator = Paginator(rows, BOARD_PAGE_SIZE)
    if not form.is_bound or form.is_valid():
        # The grouped counts already hold the total for these filters: no second COUNT.
        paginator.count = facets["total"]
    page = paginator.get_page(request.GET.get("page"))
    # One query for every active pause; agent and action-type pauses cut across definitions, so
    # the board names each of them with who and why.
    active_pauses = list(AgentPause.objects.active().select_related("agent", "action_type", "paused_by"))
    everything = any(p.definition_id is None and p.agent_id is None and p.action_type_id is None for p in active_pauses)
    paused = None if everything else {p.definition_id for p in active_pauses if p.definition_id}
    paused_agents = {p.agent_id for p in active_pauses if p.agent_id}
    grain_pauses = [p for p in active_pauses if p.agent_id or p.action_type_id]
    journeys = list(page.object_list)
    for journey in journeys:
        journey.agents_paused = paused is None or journey.definition_id in paused or journey.agent_id in paused_agents

    return {
        "form": form,
        "page": page,
        "journeys": journeys,
        "cursor": marker,
        "filter_query": filter_query,
        # The counters follow the filters: each facet counts what the other filters leave.
        "status_counts": [(s.value, s.label, facets["by_status"][s.value]) for s in Journey.LIVE_STATUSES],
        "definition_counts": [(key, name, facets["by_definition"][pk]) for pk, key, name in definitions],
        "total": facets["total"],
        "waiting_on_person": facets["waiting"],
        "breached": facets["breached"],
        "filters": filters,
        "all_paused": paused is None,
        "paused_names": [name for pk, _, name in definitions if paused is None or pk in paused],
        "grain_pauses": grain_pauses,
        "poll_seconds": POLL_SECONDS,
    }
