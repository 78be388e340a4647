from __future__ import annotations

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import (
    ActionType,
    Agent,
    CoreAccount,
    CoreCard,
    CoreCustomer,
    DefinitionVersion,
    Event,
    Journey,
    JourneyDefinition,
    ProposedAction,
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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Journey)
class JourneyAdmin(ReadOnlyAdmin):
    list_display = ["pk", "definition", "customer_ref", "status", "current_step", "epoch", "created_at"]
    list_filter = ["definition", "status"]
    search_fields = ["customer_ref"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["pk", "journey", "kind", "actor_kind", "at", "summary"]
    list_filter = ["kind"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ProposedAction)
class ProposedActionAdmin(ReadOnlyAdmin):
    list_display = ["pk", "journey", "action_type", "status", "decision_rule", "created_at"]
    list_filter = ["status", "action_type"]


admin.site.register([CoreCustomer, CoreAccount, CoreCard], ReadOnlyAdmin)
