"""The console's navigation: each entry says who sees it, so the menu fits the user's role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from journeys.access import definitions_for


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    visible: Callable[[object], bool]
    section: str = ""  # the url names that light this entry up share this prefix


NAV: list[NavItem] = [
    NavItem("Journeys", "journey_list", lambda u: definitions_for(u).exists(), section="journey"),
    NavItem("Exceptions", "cases:workbench", lambda u: definitions_for(u).exists(), section="cases"),
    NavItem("Metrics", "metrics:overview", lambda u: definitions_for(u).exists(), section="metrics"),
    NavItem("Django admin", "admin:index", lambda u: u.is_staff, section="admin"),
]


def items_for(user) -> list[NavItem]:
    if not user.is_authenticated:
        return []
    return [item for item in NAV if item.visible(user)]


def landing_url_name(user) -> str:
    """Where a user lands after login: the first page their role can use."""
    items = items_for(user)
    return items[0].url_name if items else "no_access"
