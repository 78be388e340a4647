"""The live board: every live journey the user may see, kept current by cheap polling.

The page polls with a *change marker* — the newest ``updated_at`` among the user's visible
journeys (any status: a journey that finishes is touched too), the pause history's size (a
pause changes no journey row) and a one-minute clock bucket so the "time in state" and "SLA
left" columns age. When the marker the browser sends back is the current one, the answer is an
empty 204 that htmx does not swap: two small indexed queries, no render. The reads are in
``console/selectors.py``.
"""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from journeys.models import Journey

from . import selectors
from .polling import live_poll
from .views import ConsoleRequest

BOARD_PAGE_SIZE = 50
POLL_SECONDS = 1.5


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
        self.fields["agent"].choices = [("", "All agents"), *((name, name) for name in selectors.agent_names())]
        self._definition_ids = {key: pk for pk, key, _ in definitions}

    def definition_id(self, key: str) -> int | None:
        return self._definition_ids.get(key)


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
    return selectors.visible_definitions(user)


@require_GET
@login_required
def board(request: ConsoleRequest) -> HttpResponse:
    definitions = _visible_definitions(request.user)
    if not definitions:  # not in this person's menu either (navigation.NAV): the page is not theirs
        raise Http404("No journeys to show.")
    definition_ids = [pk for pk, _, _ in definitions]
    marker = selectors.board_marker(definition_ids)
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
    filters: dict = form.cleaned_data if form.is_valid() else {}
    # One grouped query for every number at the top of the board.
    facets = _facets(selectors.board_counts(definition_ids, agent=filters.get("agent")), form, filters)
    rows = selectors.board_rows(
        definition_ids,
        valid=form.is_valid() or not form.is_bound,
        definition_id=form.definition_id(filters.get("definition") or ""),
        status=filters.get("status") or "",
        agent=filters.get("agent") or "",
        needs_person=bool(filters.get("needs_person")),
    )
    paginator = Paginator(rows, BOARD_PAGE_SIZE)
    if not form.is_bound or form.is_valid():
        # The grouped counts already hold the total for these filters: no second COUNT.
        paginator.count = facets["total"]
    page = paginator.get_page(request.GET.get("page"))
    pauses = selectors.board_pauses()
    journeys = selectors.mark_paused(list(page.object_list), pauses)
    page.object_list = journeys
    paused = pauses.definitions
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
        "grain_pauses": pauses.grains,
        "poll_seconds": POLL_SECONDS,
    }
