"""The console's navigation: each entry says who sees it, so the menu fits the user's role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.http import Http404

from journeys.access import perms_held
from journeys.rights import Right


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    # Called with the user and the permission keys they hold on any definition (one query).
    visible: Callable[[object, frozenset[str]], bool]
    section: str = ""  # the url names that light this entry up share this prefix


NAV: list[NavItem] = [
    NavItem("Live board", "board", lambda u, held: Right.VIEW in held, section="board"),
    NavItem("Desk", "desk", lambda u, held: Right.TAKE_OVER in held, section="desk"),
    NavItem("Journeys", "journey_list", lambda u, held: Right.VIEW in held, section="journey"),
    NavItem(
        "Approvals",
        "review_queue",
        lambda u, held: Right.APPROVE in held or _receives_escalations(u),
        section="review_queue",
    ),
    NavItem("Exceptions", "cases:workbench", lambda u, held: Right.VIEW in held, section="cases"),
    NavItem("Metrics", "metrics:overview", lambda u, held: Right.VIEW in held, section="metrics"),
    NavItem("Audit", "audit:search", lambda u, held: Right.AUDIT in held, section="audit:"),
    NavItem(
        "Review samples",
        "review_samples",
        lambda u, held: bool({Right.APPROVE, Right.AUDIT} & held),
        section="review_sample",
    ),
    NavItem(
        "Scopes",
        "review_scopes",
        lambda u, held: u.is_staff or u.is_superuser or Right.AUDIT in held,
        section="review_scope",
    ),
    NavItem("Teams", "team_list", lambda u, held: _may_manage_teams(u), section="team"),
    NavItem(
        "Governance changes",
        "governance_list",
        lambda u, held: u.is_staff or u.is_superuser or _may_manage_teams(u),
        section="governance",
    ),
    NavItem("Stop button", "agents_stop_button", lambda u, held: Right.PAUSE in held, section="agents_"),
    NavItem("API tokens", "api_tokens", lambda u, held: u.is_superuser, section="api_token"),
    NavItem("Webhooks", "webhooks", lambda u, held: u.is_superuser, section="webhook"),
    NavItem("Django admin", "admin:index", lambda u, held: u.is_staff, section="admin"),
]


def _may_manage_teams(user) -> bool:
    from .teams import may_manage_teams  # the page module imports models; keep this one light

    return may_manage_teams(user)


def _receives_escalations(user) -> bool:
    from review.access import may_receive_escalations  # a team without grants may decide escalated items

    return may_receive_escalations(user)


def in_menu(user, url_name: str) -> bool:
    """Whether the page is in this user's menu (the rule the menu itself uses)."""
    item = next(item for item in NAV if item.url_name == url_name)
    return user.is_authenticated and item.visible(user, perms_held(user))


def menu_page(url_name: str):
    """A page is reachable exactly when it is in the user's menu; otherwise it answers 404.

    Put it under ``login_required`` so an anonymous visitor is still sent to the login page.
    """
    next(item for item in NAV if item.url_name == url_name)  # a typo fails at import, not at request

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not in_menu(request.user, url_name):
                raise Http404("This page is not part of your menu.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def items_for(user) -> list[NavItem]:
    if not user.is_authenticated:
        return []
    held = perms_held(user)
    return [item for item in NAV if item.visible(user, held)]


def landing_url_name(user) -> str:
    """Where a user lands after login: the page their role works in most.

    People who act on journeys (approve, take over) land on the live board; people who only
    audit land on the audit trail; admins who act on no journey land on the scopes.
    """
    held = perms_held(user)
    if {Right.APPROVE, Right.TAKE_OVER} & held and not user.is_superuser:
        return "board"
    if user.is_superuser or user.is_staff:
        return "review_scopes"
    if Right.AUDIT in held:
        return "audit:search"
    items = items_for(user)
    return items[0].url_name if items else "no_access"
