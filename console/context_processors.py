from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .navigation import items_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_teams": []}
    match = getattr(request, "resolver_match", None)
    current = match.view_name if match else ""
    return {
        "nav_items": [
            {
                "label": item.label,
                "url_name": item.url_name,
                "active": bool(item.section) and current.startswith(item.section),
            }
            for item in items_for(user)
        ],
        "user_teams": [g.name for g in user.groups.all()],
        "audit_alert": _audit_alert(user),
    }


def _audit_alert(user: Any) -> Any:
    """A failed audit verification, on every page of compliance officers and admins until
    someone acknowledges it."""
    from review.audit.access import may_see_audit_health
    from review.audit.services import unacknowledged_failure

    return unacknowledged_failure() if may_see_audit_health(user) else None
