"""The stop button: a pause of every agent on one journey definition, or of all agents.

A row is active while ``resumed_at`` is empty; resumed rows stay as history (who paused, why,
for how long). At most one active pause exists per scope (a definition, or "all").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from .domain import JourneyDefinition


class AgentPauseQuerySet(models.QuerySet["AgentPause"]):
    def active(self) -> AgentPauseQuerySet:
        return self.filter(resumed_at__isnull=True)

    def covering(self, definition_id: int) -> AgentPauseQuerySet:
        """Active pauses that stop agents on this definition (its own, or the global one)."""
        return self.active().filter(models.Q(definition__isnull=True) | models.Q(definition_id=definition_id))

    def paused_definition_ids(self) -> set[int] | None:
        """The definitions whose agents are paused now; None: every definition (global pause)."""
        ids = set(self.active().values_list("definition_id", flat=True))
        if None in ids:
            return None
        return ids


class AgentPause(models.Model):
    definition = models.ForeignKey(
        JourneyDefinition,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="agent_pauses",
        help_text="Empty: every agent on every definition",
    )
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    paused_at = models.DateTimeField(default=timezone.now)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resume_reason = models.TextField(blank=True)

    objects = AgentPauseQuerySet.as_manager()

    class Meta:
        ordering = ["-paused_at", "-pk"]
        constraints = [
            # One active pause per scope; the global scope (NULL definition) counts as one scope.
            models.UniqueConstraint(
                Coalesce("definition", 0),
                condition=models.Q(resumed_at__isnull=True),
                name="agent_pause_one_active_per_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"Agents paused on {self.scope_label}"

    @property
    def scope_label(self) -> str:
        return self.definition.name if self.definition_id else "all journey definitions"

    @property
    def is_active(self) -> bool:
        return self.resumed_at is None
