"""The stop button: a pause of agents at one grain — a journey definition, an agent, an action
type — or of everything.

A row is active while ``resumed_at`` is empty; resumed rows stay as history (who paused, why,
for how long). At most one active pause exists per scope. A definition, agent or global pause
stops the agents' turns on the journeys it covers; an action-type pause lets agents run but
makes every proposal of that type wait for a person (``journeys.lifecycle.proposal.propose``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from .domain import ActionType, Agent, JourneyDefinition

EVERYTHING = models.Q(definition__isnull=True, agent__isnull=True, action_type__isnull=True)


class AgentPauseQuerySet(models.QuerySet["AgentPause"]):
    def active(self) -> AgentPauseQuerySet:
        return self.filter(resumed_at__isnull=True)

    def covering(self, definition_id: int, agent_id: int | None = None) -> AgentPauseQuerySet:
        """Active pauses that stop the agent's turns on a journey of this definition run by this
        agent: the definition's, the agent's, or the global one."""
        covers = EVERYTHING | models.Q(definition_id=definition_id)
        if agent_id is not None:
            covers |= models.Q(agent_id=agent_id)
        return self.active().filter(covers)

    def paused_definition_ids(self) -> set[int] | None:
        """The definitions whose agents are paused now; None: every definition (global pause)."""
        active = self.active()
        if active.filter(EVERYTHING).exists():
            return None
        return set(active.filter(definition__isnull=False).values_list("definition_id", flat=True))

    def paused_agent_ids(self) -> set[int]:
        return set(self.active().filter(agent__isnull=False).values_list("agent_id", flat=True))

    def paused_action_type_ids(self) -> set[int]:
        return set(self.active().filter(action_type__isnull=False).values_list("action_type_id", flat=True))

    def stopped_journeys_q(self) -> models.Q | None:
        """A filter for journeys whose agent turns are stopped now; None: every journey."""
        definitions = self.paused_definition_ids()
        if definitions is None:
            return None
        return models.Q(definition_id__in=definitions) | models.Q(agent_id__in=self.paused_agent_ids())


class AgentPause(models.Model):
    definition = models.ForeignKey(
        JourneyDefinition,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="agent_pauses",
        help_text="Empty (with no agent and no action type): everything",
    )
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="pauses")
    action_type = models.ForeignKey(
        ActionType,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="pauses",
        help_text="Proposals of this type wait for a person",
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
            # One active pause per scope; the global scope (all NULL) counts as one scope.
            models.UniqueConstraint(
                Coalesce("definition", 0),
                Coalesce("agent", 0),
                Coalesce("action_type", 0),
                condition=models.Q(resumed_at__isnull=True),
                name="agent_pause_one_active_per_scope",
            ),
            # A pause has one grain: a definition, an agent, an action type, or none (everything).
            models.CheckConstraint(
                condition=models.Q(agent__isnull=True, action_type__isnull=True)
                | models.Q(definition__isnull=True, action_type__isnull=True)
                | models.Q(definition__isnull=True, agent__isnull=True),
                name="agent_pause_one_grain",
            ),
        ]

    def __str__(self) -> str:
        return f"Agents paused on {self.scope_label}"

    @property
    def scope_label(self) -> str:
        if self.definition_id:
            return self.definition.name
        if self.agent_id:
            return f"agent {self.agent.name}"
        if self.action_type_id:
            return f"every {self.action_type.name} proposal"
        return "all journey definitions"

    @property
    def is_active(self) -> bool:
        return self.resumed_at is None

    @property
    def gate_key(self) -> str:
        return pause_gate_key(definition_id=self.definition_id, agent_id=self.agent_id, action_type=self.action_type_id)


def pause_gate_key(*, definition_id: int | None, agent_id: int | None, action_type: int | None) -> str:
    """The gate a pause of this scope closes (``journeys.pause_gate``). Every action-type pause
    shares one gate: an agent's turn holds it while it proposes, whatever the types."""
    if definition_id:
        return f"definition:{definition_id}"
    if agent_id:
        return f"agent:{agent_id}"
    if action_type:
        return "action-types"
    return "all"
