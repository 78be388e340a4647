from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .navigation import items_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The menu, the user's teams and the audit alert of the page shell. Each is looked up only
    when a template uses it: a fragment (a poll's answer) that shows no shell costs no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_teams": []}
    match = getattr(request, "resolver_match", None)
    current = match.view_name if match else ""
    return {
        "nav_items": SimpleLazyObject(
            lambda: [
                {
                    "label": item.label,
                    "url_name": item.url_name,
                    "active": bool(item.section) and current.startswith(item.section),
                }
                for item in items_for(user)
            ]
        ),
        "user_teams": SimpleLazyObject(lambda: [g.name for g in user.groups.all()]),
        "audit_alert": SimpleLazyObject(lambda: _audit_alert(user)),
    }


def _audit_alert(user: Any) -> Any:
    """A failed audit verification, on every page of compliance officers and admins until
    someone acknowledges it."""
    from review.audit.access import may_see_audit_health
    from review.audit.services import unacknowledged_failure

    return unacknowledged_failure() if may_see_audit_health(user) else None
