"""The Django admin: configuration only.

Journeys, their events and proposals, and the core bank's customers, accounts and cards are
deliberately *not* registered: the admin knows nothing of team permissions or masking, so a
staff user with a model-wide view permission would read every team's journeys and customers'
addresses and dates of birth there. The console is the one place those are shown, filtered by
team grants and masked.

Nor is the admin a side door around maker-checker on governance: rights are granted on the Teams
page, where anything that widens them waits for a second admin. So the admin has no
object-permission pages on definitions, shows organisation-wide grants read-only, and cannot
change a user's teams, permissions or superuser flag, nor a team's permissions.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

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
class JourneyDefinitionAdmin(admin.ModelAdmin):
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


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class HandoffUserAdmin(UserAdmin):
    """People's names, e-mail, password and whether they are active; their teams (and so their
    rights) change on the Teams page, under maker-checker."""

    readonly_fields = ["is_superuser", "groups", "user_permissions", "last_login", "date_joined"]


@admin.register(Group)
class HandoffGroupAdmin(GroupAdmin):
    """Teams are created, granted and deleted on the Teams page; here they are only listed."""

    readonly_fields = ["name", "permissions"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
