"""The Django admin: configuration only.

Journeys, their events and proposals, and the core bank's customers, accounts and cards are
deliberately *not* registered: the admin knows nothing of team permissions or masking, so a
staff user with a model-wide view permission would read every team's journeys and customers'
addresses and dates of birth there. The console is the one place those are shown, filtered by
team grants and masked.
"""

from __future__ import annotations

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import (
    ActionType,
    Agent,
    DefinitionVersion,
    JourneyDefinition,
    OrganisationGrant,
)


class VersionInline(admin.TabularInline):
    model = DefinitionVersion
    extra = 0
    readonly_fields = ["number", "sla_minutes", "created_at", "created_by"]
    fields = readonly_fields
    can_delete = False


@admin.register(JourneyDefinition)
class JourneyDefinitionAdmin(GuardedModelAdmin):
    list_display = ["name", "key", "risk_level", "owning_team", "fallback_queue"]
    inlines = [VersionInline]


@admin.register(ActionType)
class ActionTypeAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "is_read_only", "money_param"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "group", "is_enabled"]


@admin.register(OrganisationGrant)
class OrganisationGrantAdmin(admin.ModelAdmin):
    """Read-only: an organisation-wide right is granted on the team's page, where adding one waits
    for a second admin (maker-checker) and removing one applies at once, both audited. Here it can
    be looked at, never added, changed or deleted."""

    list_display = ["team", "right", "created_at"]
    readonly_fields = ["team", "right", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
