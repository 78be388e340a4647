"""The console's navigation: each entry says who sees it, so the menu fits the user's role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from journeys.access import definitions_for
from review.audit.access import may_audit


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    visible: Callable[[object], bool]
    section: str = ""  # the url names that light this entry up share this prefix


NAV: list[NavItem] = [
    NavItem("Live board", "board", lambda u: definitions_for(u).exists(), section="board"),
    NavItem("Journeys", "journey_list", lambda u: definitions_for(u).exists(), section="journey"),
    NavItem("Approvals", "review_queue", lambda u: definitions_for(u, "approve").exists(), section="review_queue"),
    NavItem("Review samples", "review_samples",
            lambda u: definitions_for(u, "approve").exists() or definitions_for(u, "audit").exists(),
            section="review_sample"),
    NavItem("Scopes", "review_scopes",
            lambda u: u.is_staff or u.is_superuser or definitions_for(u, "audit").exists(),
            section="review_scope"),
    NavItem("Stop button", "agents_stop_button", lambda u: definitions_for(u, "pause").exists(),
            section="agents_"),
    NavItem("Exceptions", "cases:workbench", lambda u: definitions_for(u).exists(), section="cases"),
    NavItem("Metrics", "metrics:overview", lambda u: definitions_for(u).exists(), section="metrics"),
    NavItem("Django admin", "admin:index", lambda u: u.is_staff, section="admin"),
    NavItem("Audit", "audit:search", may_audit, section="audit:"),
    NavItem("Teams", "team_list", lambda u: _may_manage_teams(u), section="team"),
]


def _may_manage_teams(user) -> bool:
    from .teams import may_manage_teams  # the page module imports models; keep this one light

    return may_manage_teams(user)


def items_for(user) -> list[NavItem]:
    if not user.is_authenticated:
        return []
    return [item for item in NAV if item.visible(user)]


def landing_url_name(user) -> str:
    """Where a user lands after login: the first page their role can use."""
    items = items_for(user)
    return items[0].url_name if items else "no_access"
