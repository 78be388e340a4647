"""Exception cases, their groups, the label taxonomy and annotations.

A case is opened automatically (in the transaction of the event that caused it) or by a person
flagging a journey. Cases with the same signature — definition, step, kind and cause (an error
class or a policy rule) — share a ``CaseGroup`` so people work on "42 times the same thing".
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from journeys.models import Event, ExceptionKind, Journey, JourneyDefinition


class Label(models.Model):
    """A label of the annotation taxonomy. Admins edit it; a used label is retired, not deleted."""

    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=80, unique=True)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_audit(self) -> dict[str, object]:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "is_active": self.is_active,
        }


class CaseGroup(models.Model):
    """Every case with the same signature: (definition, step, kind, cause)."""

    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="case_groups")
    step = models.CharField(max_length=60, blank=True)
    kind = models.CharField(max_length=60)
    cause = models.CharField(max_length=200, blank=True, help_text="Error class or policy rule")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["definition", "step", "kind", "cause"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "step", "kind", "cause"], name="case_group_signature"),
        ]

    def __str__(self) -> str:
        return " / ".join(self.signature_parts())

    def with_version(self, version: Any) -> CaseGroup:
        """Attach the definition's current version (a selector reads them all in one query), so
        ``step_title`` reads no database while a template renders."""
        self._current_version = version
        return self

    @property
    def step_title(self) -> str:
        if not self.step:
            return "any step"
        version = self._current_version if hasattr(self, "_current_version") else self.definition.current_version()
        return version.step_title(self.step) if version else self.step.replace("_", " ")

    @property
    def kind_title(self) -> str:
        return ExceptionKind.label_of(self.kind).lower()

    def signature_parts(self) -> list[str]:
        parts = [self.definition.name.lower(), self.step_title.lower(), self.kind_title]
        if self.cause:
            parts.append(self.cause)
        return parts


class ExceptionCaseQuerySet(models.QuerySet["ExceptionCase"]):
    def unresolved(self) -> ExceptionCaseQuerySet:
        return self.exclude(status=ExceptionCase.Status.RESOLVED)


class ExceptionCase(models.Model):
    # One list of kinds for the runtime, the agents and this app (journeys.models.ExceptionKind).
    Kind = ExceptionKind

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ASSIGNED = "assigned", "Assigned"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        FIXED = "fixed", "Fixed for the customer"
        AGENT_CHANGE = "agent_change", "Agent changed"
        POLICY_CHANGE = "policy_change", "Policy changed"
        EXPECTED = "expected", "Expected behaviour, no action"
        CUSTOMER_CONTACTED = "customer_contacted", "Customer contacted"
        DUPLICATE = "duplicate", "Duplicate"

    journey = models.ForeignKey(Journey, on_delete=models.PROTECT, related_name="exception_cases")
    group = models.ForeignKey(CaseGroup, on_delete=models.PROTECT, related_name="cases")
    kind = models.CharField(max_length=60)
    step = models.CharField(max_length=60, blank=True)
    cause = models.CharField(max_length=200, blank=True)
    summary = models.TextField()
    # The event that opened the case; unique, so a case is opened once per triggering event.
    trigger_event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="exception_case")
    # The events around it: the trigger and the few just before, for context.
    events = models.ManyToManyField(Event, related_name="+", blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cases",
    )
    flagged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.CharField(max_length=30, choices=Resolution.choices, blank=True)
    resolution_note = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    assigned_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = ExceptionCaseQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["group", "status"], name="case_group_status"),
            models.Index(fields=["opened_at"], name="case_opened_at"),
            models.Index(fields=["journey"], name="case_journey"),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk}: {self.kind_title} on J-{self.journey_id}"

    @property
    def kind_title(self) -> str:
        return ExceptionKind.label_of(self.kind).lower()

    @property
    def is_resolved(self) -> bool:
        return self.status == self.Status.RESOLVED


class Annotation(models.Model):
    """A person's labels and note on an exception case or on one timeline event."""

    journey = models.ForeignKey(Journey, on_delete=models.PROTECT, related_name="annotations")
    case = models.ForeignKey(ExceptionCase, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations")
    labels = models.ManyToManyField(Label, related_name="annotations", blank=True)
    note = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    # The journey event that puts this annotation in the audit trail.
    audit_event = models.OneToOneField(Event, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(case__isnull=False) | models.Q(event__isnull=False),
                name="annotation_has_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"Annotation by {self.author} on J-{self.journey_id}"
