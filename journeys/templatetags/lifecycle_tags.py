"""``{{ obj|transitions_for:user }}``: the transitions a page may offer as buttons."""

from __future__ import annotations

from typing import Any

from django import template

from journeys.lifecycle import transitions_for as _transitions_for

register = template.Library()


@register.filter
def transitions_for(obj: Any, user: Any) -> set[str]:
    return _transitions_for(user, obj)
