"""Permission scopes (policy rules), cumulative limits and the history of their changes.

The policy engine (``review.policy``) reads these; ``docs/policy.md`` documents how a rule wins.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from journeys.models import ActionType, Agent, JourneyDefinition, ProposedAction

Effect = ProposedAction.Effect

# How strict an effect is; at equal specificity the stricter rule wins.
STRICTNESS = {
    Effect.ALLOW: 0,
    Effect.REQUIRE_APPROVAL: 1,
    Effect.REQUIRE_TWO_APPROVALS: 2,
    Effect.DENY: 3,
}

# Condition operators and how they read in an explanation.
OPERATORS = {
    "<=": "≤",
    "<": "<",
    ">=": "≥",
    ">": ">",
    "==": "=",
    "!=": "≠",
    "in": "is one of",
    "not in": "is not one of",
}


class OnTimeout(models.TextChoices):
    FALLBACK = "fallback", "Fall back to a person"
    ESCALATE = "escalate", "Escalate to another team"


class PermissionScopeQuerySet(models.QuerySet["PermissionScope"]):
    def enabled(self) -> PermissionScopeQuerySet:
        return self.filter(is_enabled=True)


class PermissionScope(models.Model):
    """A policy rule: who (agent / agent group / anyone) may take which action, on which journey
    definition, under which conditions on the parameters, with which effect.

    ``conditions`` is a list of ``{"param": "amount", "op": "<=", "value": "100.00"}``; all must
    hold for the rule to match. Numbers compare as decimals, strings and booleans by equality,
    ``in`` / ``not in`` take a list.
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    definition = models.ForeignKey(
        JourneyDefinition,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scopes",
        help_text="Empty: every journey definition",
    )
    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scopes",
        help_text="Empty: any agent or person (unless an agent group is set)",
    )
    agent_group = models.CharField(max_length=60, blank=True, help_text="Empty: any agent group")
    action_type = models.ForeignKey(
        ActionType,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scopes",
        help_text="Empty: every action type",
    )
    effect = models.CharField(max_length=30, choices=Effect.choices)
    conditions = models.JSONField(default=list, blank=True)
    approval_timeout_minutes = models.PositiveIntegerField(default=60)
    on_timeout = models.CharField(max_length=10, choices=OnTimeout.choices, default=OnTimeout.FALLBACK)
    escalate_to = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the journey definition's owning team",
    )
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PermissionScopeQuerySet.as_manager()

    class Meta:
        ordering = ["action_type__key", "definition__key", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(effect__in=[e.value for e in Effect]), name="scope_effect_valid"),
            models.CheckConstraint(condition=models.Q(approval_timeout_minutes__gte=1), name="scope_timeout_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def targets_agents_only(self) -> bool:
        return self.agent_id is not None or bool(self.agent_group)

    def conditions_text(self) -> str:
        return " and ".join(condition_text(c) for c in self.conditions or []) or "always"

    def snapshot(self) -> dict[str, Any]:
        """The rule as data, for the change history (before / after)."""
        return {
            "name": self.name,
            "description": self.description,
            "definition": self.definition.key if self.definition_id else None,
            "agent": self.agent.name if self.agent_id else None,
            "agent_group": self.agent_group,
            "action_type": self.action_type.key if self.action_type_id else None,
            "effect": self.effect,
            "conditions": self.conditions,
            "approval_timeout_minutes": self.approval_timeout_minutes,
            "on_timeout": self.on_timeout,
            "escalate_to": self.escalate_to.name if self.escalate_to_id else None,
            "is_enabled": self.is_enabled,
        }


def condition_text(condition: dict[str, Any]) -> str:
    value = condition.get("value")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    return f"{condition.get('param')} {OPERATORS.get(condition.get('op'), condition.get('op'))} {value}"


def conditions_sentence(conditions: list[dict[str, Any]] | None) -> str:
    """A rule's conditions as a person reads them: "when amount ≤ 100 and reason = goodwill"."""
    if not conditions:
        return "always (no conditions)"
    return "when " + " and ".join(condition_text(c) for c in conditions)


def _shown(field: str, value: Any) -> Any:
    if field == "conditions" and (value is None or isinstance(value, list)):
        return conditions_sentence(value)
    return value


class CumulativeLimit(models.Model):
    """A budget over a sliding window: "no more than 300.00 refunded per customer per 30 days
    without approval", "at most 20 card blocks per agent per hour".

    The engine counts what was allowed (automatically or by a person) against it; a proposal
    that would take the total past ``maximum`` gets ``effect_when_exceeded`` instead. Counting
    is serialised per (limit, subject) by locking a ``LimitCounter`` row.
    """

    class Measure(models.TextChoices):
        AMOUNT = "amount", "Sum of amounts"
        COUNT = "count", "Number of actions"

    class Subject(models.TextChoices):
        CUSTOMER = "customer", "per customer"
        PROPOSER = "proposer", "per agent or person proposing"
        DEFINITION = "definition", "per journey definition"

    name = models.CharField(max_length=120, unique=True)
    definition = models.ForeignKey(
        JourneyDefinition,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cumulative_limits",
        help_text="Empty: every journey definition",
    )
    action_type = models.ForeignKey(ActionType, on_delete=models.PROTECT, related_name="cumulative_limits")
    measure = models.CharField(max_length=10, choices=Measure.choices)
    subject = models.CharField(max_length=12, choices=Subject.choices)
    maximum = models.DecimalField(max_digits=12, decimal_places=2)
    window_minutes = models.PositiveIntegerField()
    effect_when_exceeded = models.CharField(
        max_length=30,
        choices=[(e.value, e.label) for e in Effect if e != Effect.ALLOW],
        default=Effect.REQUIRE_APPROVAL,
    )
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["action_type__key", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(maximum__gte=0), name="limit_maximum_not_negative"),
            models.CheckConstraint(condition=models.Q(window_minutes__gte=1), name="limit_window_positive"),
            models.CheckConstraint(
                condition=~models.Q(effect_when_exceeded=Effect.ALLOW), name="limit_exceeded_not_allow"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def window_text(self) -> str:
        minutes = self.window_minutes
        if minutes % (24 * 60) == 0:
            days = minutes // (24 * 60)
            return "day" if days == 1 else f"{days} days"
        if minutes % 60 == 0:
            hours = minutes // 60
            return "hour" if hours == 1 else f"{hours} hours"
        return f"{minutes} minutes"

    def describe(self) -> str:
        what = f"{self.maximum}" if self.measure == self.Measure.AMOUNT else f"{int(self.maximum)} action(s)"
        return f"at most {what} {self.get_subject_display()} per {self.window_text()}"

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition.key if self.definition_id else None,
            "action_type": self.action_type.key if self.action_type_id else None,
            "measure": self.measure,
            "subject": self.subject,
            "maximum": f"{Decimal(self.maximum):.2f}",
            "window_minutes": self.window_minutes,
            "effect_when_exceeded": self.effect_when_exceeded,
            "is_enabled": self.is_enabled,
        }


class LimitCounter(models.Model):
    """One row per (limit, subject): the row the engine locks (``SELECT … FOR UPDATE``) so two
    concurrent proposals for the same customer or agent are counted one after the other."""

    limit = models.ForeignKey(CumulativeLimit, on_delete=models.CASCADE, related_name="counters")
    subject_key = models.CharField(max_length=80)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["limit", "subject_key"], name="limit_counter_unique")]

    def __str__(self) -> str:
        return f"{self.limit} / {self.subject_key}"


class LimitUsage(models.Model):
    """What one allowed proposal used of a limit; the window sum is over these rows. A proposal
    counts once per counter (unique), so a retried decision never counts twice."""

    counter = models.ForeignKey(LimitCounter, on_delete=models.CASCADE, related_name="usages")
    proposal = models.ForeignKey(ProposedAction, on_delete=models.CASCADE, related_name="+")
    quantity = models.DecimalField(max_digits=12, decimal_places=2)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["counter", "proposal"], name="limit_usage_once")]
        indexes = [models.Index(fields=["counter", "at"], name="limit_usage_window")]

    def __str__(self) -> str:
        return f"{self.quantity} of {self.counter}"


class ScopeChange(models.Model):
    """The history of every change to a scope or a cumulative limit, with before and after."""

    class Target(models.TextChoices):
        SCOPE = "scope", "Permission scope"
        LIMIT = "limit", "Cumulative limit"

    class Change(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DISABLED = "disabled", "Disabled"
        ENABLED = "enabled", "Enabled"

    target = models.CharField(max_length=10, choices=Target.choices)
    target_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=120)
    change = models.CharField(max_length=10, choices=Change.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target", "target_id"], name="scope_change_target")]

    def __str__(self) -> str:
        return f"{self.get_change_display()} {self.name}"

    def changed_fields(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) of what changed; conditions read as a sentence."""
        before, after = self.before or {}, self.after or {}
        return [
            (k, _shown(k, before.get(k)), _shown(k, after.get(k)))
            for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)
        ]


class RulesVersion(models.Model):
    """One row whose ``token`` changes with every write to a permission scope or a cumulative
    limit, in the writing transaction, whatever makes the write (the services, the admin, a
    migration, SQL by hand): database triggers move it (migration ``0007_rules_version``). The
    policy engine keeps the enabled rules per process and reads them again when the token it
    sees is not the one they were read under (``review.policy``). A token is never reused, so
    a change that rolled back can never be mistaken for one that committed."""

    token = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"rules {self.token}"
