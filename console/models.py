"""Roll-ups behind the metrics pages, kept by the Celery beat task ``refresh_metrics``.

Two layers, both derived only from the event log, proposals and journeys (``console.metrics``):

- compact facts, one row per journey, per step run and per decided proposal, recomputed for every
  journey that has new events since the watermark; exact percentiles and breakdowns read these;
- ``DailyRollup`` counters per (definition, UTC day), recomputed from the facts for the days a
  refresh touched; the headline rates and the trend read these.

Nothing here is written by hand: a full rebuild (``rollup_rebuild``) gives the same rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from journeys.models import Journey, JourneyDefinition, ProposedAction


class JourneyFact(models.Model):
    journey = models.OneToOneField(Journey, primary_key=True, on_delete=models.CASCADE, related_name="+")
    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="+")
    customer_ref = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    day = models.DateField()
    status = models.CharField(max_length=20)
    finished_at = models.DateTimeField(null=True, blank=True)
    resolution_seconds = models.FloatField(null=True, blank=True)
    person_involved = models.BooleanField(default=False)
    contained = models.BooleanField(default=False)
    escalated = models.BooleanField(default=False)
    taken_over = models.BooleanField(default=False)
    errored = models.BooleanField(default=False)
    abandoned = models.BooleanField(default=False)
    abandoned_step = models.CharField(max_length=60, blank=True)
    repeat_contact = models.BooleanField(default=False)
    first_contact_resolved = models.BooleanField(default=False)
    exceptions = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["definition", "day"], name="jfact_definition_day"),
            models.Index(fields=["customer_ref", "definition", "started_at"], name="jfact_customer"),
        ]

    def __str__(self) -> str:
        return f"Facts of J-{self.journey_id}"


class StepFact(models.Model):
    """One run of one step: started (and maybe finished) on a journey."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="UTC day the journey started")
    step = models.CharField(max_length=60)
    started_at = models.DateTimeField()
    seconds = models.FloatField(null=True, blank=True, help_text="Empty while the step never finished")

    class Meta:
        indexes = [models.Index(fields=["definition", "day"], name="sfact_definition_day")]

    def __str__(self) -> str:
        return f"J-{self.journey_id} {self.step}"


class DecisionFact(models.Model):
    """How a proposal was settled: by a person (approved / rejected), expiry or policy denial."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        DENIED = "denied", "Denied by policy"

    proposal = models.OneToOneField(ProposedAction, primary_key=True, on_delete=models.CASCADE, related_name="+")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="+")
    step = models.CharField(max_length=60)
    rule = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=60)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    edited = models.BooleanField(default=False)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    proposed_at = models.DateTimeField()
    decided_at = models.DateTimeField()
    day = models.DateField(help_text="UTC day of the decision")
    latency_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["definition", "day"], name="dfact_definition_day")]

    def __str__(self) -> str:
        return f"Proposal {self.proposal_id} {self.outcome}"


class DailyRollup(models.Model):
    """Counters per definition and UTC day. Journey counts by the day the journey started;
    decision counts by the day of the decision."""

    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    journeys = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    contained = models.PositiveIntegerField(default=0)
    escalated = models.PositiveIntegerField(default=0)
    taken_over = models.PositiveIntegerField(default=0)
    abandoned = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)
    repeat_contacts = models.PositiveIntegerField(default=0)
    first_contact_resolved = models.PositiveIntegerField(default=0)
    person_decisions = models.PositiveIntegerField(default=0)
    approvals = models.PositiveIntegerField(default=0)
    rejections = models.PositiveIntegerField(default=0)
    edited_approvals = models.PositiveIntegerField(default=0)
    expirations = models.PositiveIntegerField(default=0)
    policy_denials = models.PositiveIntegerField(default=0)

    COUNTERS = [
        "journeys",
        "completed",
        "contained",
        "escalated",
        "taken_over",
        "abandoned",
        "errored",
        "repeat_contacts",
        "first_contact_resolved",
        "person_decisions",
        "approvals",
        "rejections",
        "edited_approvals",
        "expirations",
        "policy_denials",
    ]

    class Meta:
        ordering = ["definition", "day"]
        constraints = [models.UniqueConstraint(fields=["definition", "day"], name="daily_rollup_unique")]

    def __str__(self) -> str:
        return f"{self.definition_id} on {self.day}"


class RollupState(models.Model):
    """The refresh watermark: every event up to ``last_event_id`` is reflected in the roll-ups."""

    name = models.CharField(max_length=40, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(default=0)
    last_journeys = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} up to event {self.last_event_id}"


class OperatorSettings(models.Model):
    """A person's own console settings. An empty time zone means "the browser's"."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="operator_settings"
    )
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"Settings of {self.user_id}"
