"""The journey domain: definitions, journeys, the event log, agents, action types, proposals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from .. import rights

# Object permissions people hold per journey definition (granted to teams with guardian).
DEFINITION_PERMISSIONS = rights.DEFINITION_PERMISSIONS


class JourneyDefinition(models.Model):
    """A journey type (card dispute, fee refund…). Its steps live in versions."""

    class Risk(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    customer_goal = models.CharField(max_length=200, blank=True, help_text="In the customer's words")
    risk_level = models.CharField(max_length=10, choices=Risk.choices, default=Risk.MEDIUM)
    owning_team = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fallback_queue = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        permissions = DEFINITION_PERMISSIONS

    def __str__(self) -> str:
        return self.name

    def current_version(self) -> DefinitionVersion:
        return self.versions.order_by("-number").first()


class DefinitionVersion(models.Model):
    """An immutable version of a definition's step graph; a running journey pins one.

    ``spec`` is ``{"start": step, "steps": [{"key", "title", "actions": [...], "next": {outcome: step}}]}``.
    """

    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    sla_minutes = models.PositiveIntegerField(default=60)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["definition", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "number"], name="definition_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.definition.key} v{self.number}"

    @property
    def start_step(self) -> str:
        return self.spec["start"]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.spec["steps"]

    def step(self, key: str) -> dict[str, Any] | None:
        return next((s for s in self.steps if s["key"] == key), None)

    def step_title(self, key: str) -> str:
        step = self.step(key)
        return step["title"] if step else key.replace("_", " ")


class ActionType(models.Model):
    """A bounded action an agent (or a person) may propose; executed by ``journeys.actions``."""

    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    param_schema = models.JSONField(default=dict)
    is_read_only = models.BooleanField(default=False)
    money_param = models.CharField(max_length=40, blank=True, help_text="Parameter holding an amount")

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Agent(models.Model):
    """An identity that runs steps: a service user, so object permissions apply to it."""

    class Kind(models.TextChoices):
        SCRIPTED = "scripted", "Scripted (deterministic)"
        LLM = "llm", "LLM (chat completions)"
        EXTERNAL = "external", "External (API)"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="agent")
    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SCRIPTED)
    group = models.CharField(max_length=60, blank=True, help_text="Agent group, for permission scopes")
    config = models.JSONField(default=dict, blank=True)
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JourneyQuerySet(models.QuerySet["Journey"]):
    def live(self) -> JourneyQuerySet:
        return self.filter(status__in=Journey.LIVE_STATUSES)

    def needing_person(self) -> JourneyQuerySet:
        return self.filter(models.Q(status__in=[Journey.Status.WAITING_APPROVAL, Journey.Status.HUMAN]))

    def due(self, now=None) -> JourneyQuerySet:
        """Journeys whose next agent turn is due and that no live worker holds."""
        now = now or timezone.now()
        return self.filter(
            status=Journey.Status.RUNNING,
            waiting_on__in=[Journey.WaitingOn.NOTHING, Journey.WaitingOn.RETRY],
            next_run_at__lte=now,
        ).filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lt=now))

    def customer_overdue(self, now=None) -> JourneyQuerySet:
        now = now or timezone.now()
        return self.filter(status=Journey.Status.RUNNING, waiting_on=Journey.WaitingOn.CUSTOMER, next_run_at__lte=now)


class Journey(models.Model):
    """One customer's run of a definition. The current state is a projection of its events."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
        HUMAN = "human", "With a person"
        COMPLETED = "completed", "Completed"
        ABANDONED = "abandoned", "Abandoned"
        FAILED = "failed", "Failed"

    class WaitingOn(models.TextChoices):
        NOTHING = "", "—"
        CUSTOMER = "customer", "Customer reply"
        APPROVAL = "approval", "Approval"
        RETRY = "retry", "Retry back-off"

    class Channel(models.TextChoices):
        CHAT = "chat", "Chat"
        APP = "app", "Mobile app"
        PHONE = "phone", "Phone"
        EMAIL = "email", "Email"

    LIVE_STATUSES = [Status.RUNNING, Status.WAITING_APPROVAL, Status.HUMAN]
    FINISHED_STATUSES = [Status.COMPLETED, Status.ABANDONED, Status.FAILED]

    # No index of its own: the composite indexes below lead with the definition.
    definition = models.ForeignKey(JourneyDefinition, on_delete=models.PROTECT, related_name="journeys", db_index=False)
    version = models.ForeignKey(DefinitionVersion, on_delete=models.PROTECT, related_name="journeys")
    customer_ref = models.CharField(max_length=40)  # indexed below (exact lookups only)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.CHAT)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    waiting_on = models.CharField(max_length=10, choices=WaitingOn.choices, default="", blank=True)
    current_step = models.CharField(max_length=60)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="journeys")
    controller_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="controlled_journeys"
    )
    # The takeover fence: every agent task carries the epoch it was scheduled for.
    epoch = models.PositiveIntegerField(default=0)
    # Counts agent turns; a task carries it too, so a redelivered task finds its turn done.
    turn_seq = models.PositiveIntegerField(default=0)
    turn_starts = models.PositiveSmallIntegerField(default=0)
    step_attempts = models.PositiveSmallIntegerField(default=0)
    lease_token = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # Set when the sweeper re-sends a turn: until then the re-sent message is presumed queued,
    # not lost, so a queue backlog longer than the sweep grace is not flooded with duplicates.
    dispatch_deadline = models.DateTimeField(null=True, blank=True)
    sla_deadline = models.DateTimeField()
    context = models.JSONField(default=dict, blank=True)
    needs_person_reason = models.CharField(max_length=200, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JourneyQuerySet.as_manager()

    # Changed only by the named transitions in ``journeys.lifecycle.journey``; ``save()`` refuses
    # an instance whose status-like fields were changed any other way.
    LIFECYCLE_FIELDS = (
        "status",
        "waiting_on",
        "controller_user_id",
        "epoch",
        "lease_token",
        "lease_until",
        "next_run_at",
        "dispatch_deadline",
    )

    # What the live board shows of a journey. ``updated_at`` (the board's change marker) moves
    # when one of these changes, not on bookkeeping (leases, the sweeper, context, turn counters).
    SHOWN_FIELDS = (
        "status",
        "waiting_on",
        "current_step",
        "sla_deadline",
        "state_changed_at",
        "controller_user_id",
        "agent_id",
        "version_id",
        "needs_person_reason",
        "finished_at",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A person controls a journey only while it is with a person.
            models.CheckConstraint(
                condition=models.Q(controller_user__isnull=True) | models.Q(status="human"),
                name="journey_controller_only_when_human",
            ),
            # What the journey waits on agrees with its status.
            models.CheckConstraint(
                condition=models.Q(status="waiting_approval", waiting_on="approval")
                | models.Q(status="running", waiting_on__in=["", "customer", "retry"])
                | (~models.Q(status__in=["running", "waiting_approval"]) & models.Q(waiting_on="")),
                name="journey_waiting_on_matches_status",
            ),
            # Nobody holds the turn of a journey that is not running.
            models.CheckConstraint(
                condition=models.Q(status="running") | models.Q(lease_until__isnull=True),
                name="journey_lease_only_when_running",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="journey_status_updated"),
            models.Index(fields=["definition", "status"], name="journey_definition_status"),
            models.Index(fields=["status", "next_run_at"], name="journey_due"),
            models.Index(fields=["-updated_at"], name="journey_updated"),
            # The live board: live journeys by time left to their SLA, and its change marker.
            models.Index(
                fields=["sla_deadline", "id"],
                name="journey_live_sla",
                condition=models.Q(status__in=["running", "waiting_approval", "human"]),
            ),
            models.Index(fields=["definition", "updated_at"], name="journey_definition_updated"),
            # Exact lookups by customer; the search is a substring match no index serves, so no
            # ``varchar_pattern_ops`` twin (``db_index=True`` would add one).
            models.Index(fields=["customer_ref"], name="journey_customer_ref"),
            # The board's counters read only this index (an index-only scan, not the wide rows).
            models.Index(
                fields=["definition", "status"],
                include=["controller_user", "sla_deadline"],
                condition=models.Q(status__in=["running", "waiting_approval", "human"]),
                name="journey_live_counts",
            ),
        ]

    def __str__(self) -> str:
        return f"J-{self.pk} {self.definition.key} for {self.customer_ref}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        seen = getattr(self, "_lifecycle_seen", None)
        if not self._state.adding and seen is not None and self._lifecycle_state() != seen:
            raise ValueError(
                f"J-{self.pk}: status, waiting_on, controller, epoch, lease and next run change only "
                "through journeys.lifecycle.journey."
            )
        super().save(*args, **kwargs)
        self.mark_lifecycle_clean()

    @classmethod
    def from_db(cls, db, field_names, values, *args: Any, **kwargs: Any):
        instance = super().from_db(db, field_names, values, *args, **kwargs)
        instance.mark_lifecycle_clean()
        return instance

    def _lifecycle_state(self) -> tuple[Any, ...]:
        return tuple(self.__dict__.get(field) for field in self.LIFECYCLE_FIELDS)

    def shown_state(self) -> tuple[Any, ...]:
        return tuple(self.__dict__.get(field) for field in self.SHOWN_FIELDS)

    def mark_lifecycle_clean(self) -> None:
        """The instance's status-like fields match the row (after a load or a transition)."""
        self._lifecycle_seen = self._lifecycle_state()
        self._shown_seen = self.shown_state()

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self.mark_lifecycle_clean()

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    @property
    def in_person_control(self) -> bool:
        return self.controller_user_id is not None

    @property
    def needs_person(self) -> bool:
        return self.status in (self.Status.WAITING_APPROVAL, self.Status.HUMAN) and not self.in_person_control

    @property
    def sla_breached(self) -> bool:
        end = self.finished_at or timezone.now()
        return end > self.sla_deadline

    @property
    def sla_left(self) -> timedelta:
        return self.sla_deadline - timezone.now()

    @property
    def current_step_title(self) -> str:
        return self.version.step_title(self.current_step)

    @property
    def controller_label(self) -> str:
        if self.controller_user_id:
            return self.controller_user.get_username()
        if self.status == self.Status.HUMAN:
            return self.definition.fallback_queue or "fallback queue"
        if self.agent_id and self.is_live:
            return self.agent.name
        return "—"


class ExceptionKind(models.TextChoices):
    """Why a journey needed a person: written on the exception event (``data["kind"]``) and on
    the exception case, searched and shown from this one list."""

    # the runtime
    QUARANTINED = "quarantined", "Quarantined step"
    RUNAWAY = "runaway", "Runaway agent"
    NO_AGENT = "no_agent", "No agent assigned"
    STEP_FAILED = "step_failed", "Step failed"
    AGENT_ERROR = "agent_error", "Agent error"
    INVALID_PROPOSAL = "invalid_proposal", "Invalid proposal"
    POLICY_DENIED = "policy_denied", "Policy denied"
    # A proposal or an edit named another customer's account, card, … (journeys.bounds).
    OUT_OF_BOUNDS = "out_of_bounds", "Parameter out of bounds"
    LINK_FAILED = "link_failed", "Linked journey failed"
    AGENT_HANDOFF = "agent_handoff", "Agent asked for a person"
    # the agents' own reasons
    CUSTOMER_COMPLAINT = "customer_complaint", "Customer complaint"
    IDENTITY_NOT_VERIFIED = "identity_not_verified", "Identity not verified"
    TRANSACTION_NOT_FOUND = "transaction_not_found", "Transaction not found"
    LOW_CONFIDENCE = "low_confidence", "Low confidence"
    REPLACEMENT_REFUSED = "replacement_refused", "Replacement refused"
    VULNERABLE_CUSTOMER = "vulnerable_customer", "Vulnerable customer"
    VERIFICATION_FAILED = "verification_failed", "Verification failed"
    ADDRESS_NOT_FOUND = "address_not_found", "Address not found"
    UPDATE_REFUSED = "update_refused", "Update refused"
    CORE_SYSTEM_ERROR = "core_system_error", "Core system error"
    MESSAGE_NOT_SENT = "message_not_sent", "Message not sent"
    # the llm agent's answers that could not be used (journeys/agents/llm.py)
    LLM_NOT_CONFIGURED = "llm_not_configured", "LLM agent not configured"
    LLM_TIMEOUT = "llm_timeout", "LLM endpoint timed out"
    LLM_BAD_ANSWER = "llm_bad_answer", "LLM answer unusable"
    LLM_NO_TOOL_CALL = "llm_no_tool_call", "LLM called no tool"
    LLM_UNKNOWN_TOOL = "llm_unknown_tool", "LLM called an unknown tool"
    LLM_INVALID_TOOL_CALL = "llm_invalid_tool_call", "LLM tool call malformed"
    LLM_INVALID_ARGUMENTS = "llm_invalid_arguments", "LLM tool arguments invalid"
    # approvals and people
    APPROVAL_EXPIRED = "approval_expired", "Approval expired"
    ABANDONED = "abandoned", "Abandoned"
    FLAGGED = "flagged", "Flagged by a person"

    @classmethod
    def label_of(cls, value: str) -> str:
        try:
            return str(cls(value).label)
        except ValueError:  # a case opened before its kind was named keeps its raw kind
            return value.replace("_", " ")


class EventQuerySet(models.QuerySet["Event"]):
    def timeline(self) -> EventQuerySet:
        return self.select_related("actor_user", "actor_agent", "proposal__action_type").order_by("-id")


class Event(models.Model):
    """Append-only log of everything that happens to a journey; the record behind every page.

    Rows are written by ``journeys.events.record`` only; saving an existing row raises.
    """

    class Kind(models.TextChoices):
        JOURNEY_STARTED = "journey_started", "Journey started"
        STEP_STARTED = "step_started", "Step started"
        STEP_FINISHED = "step_finished", "Step finished"
        TURN_STARTED = "turn_started", "Agent turn started"
        TURN_DROPPED = "turn_dropped", "Agent result dropped"
        TURN_RETRY = "turn_retry", "Retry scheduled"
        TURN_FAILED = "turn_failed", "Agent turn failed"
        TURN_QUARANTINED = "turn_quarantined", "Agent turn quarantined"
        MESSAGE_IN = "message_in", "Customer message"
        MESSAGE_OUT = "message_out", "Message to customer"
        ACTION_PROPOSED = "action_proposed", "Action proposed"
        ACTION_DECIDED = "action_decided", "Policy decision"
        ACTION_EDITED = "action_edited", "Action edited"
        ACTION_APPROVED = "action_approved", "Action approved"
        ACTION_REJECTED = "action_rejected", "Action rejected"
        ACTION_EXPIRED = "action_expired", "Approval expired"
        ACTION_CLAIMED = "action_claimed", "Claimed for review"
        CLAIM_RELEASED = "claim_released", "Review claim released"
        ACTION_EXECUTED = "action_executed", "Action executed"
        ACTION_FAILED = "action_failed", "Action failed"
        AGENT_NOTE = "agent_note", "Agent note"
        LOW_CONFIDENCE = "low_confidence", "Low confidence"
        HANDED_TO_PERSON = "handed_to_person", "Handed to a person"
        TAKEOVER = "takeover", "Taken over"
        HAND_BACK = "hand_back", "Handed back"
        EXCEPTION = "exception", "Exception"
        ANNOTATION = "annotation", "Annotation"
        SCOPE_CHANGE = "scope_change", "Scope change"
        PAUSED = "paused", "Agents paused"
        RESUMED = "resumed", "Agents resumed"
        LINKED_JOURNEY = "linked_journey", "Linked journey"
        COMPLETED = "completed", "Journey completed"
        ABANDONED = "abandoned", "Journey abandoned"
        FAILED = "failed", "Journey failed"

    class Actor(models.TextChoices):
        AGENT = "agent", "Agent"
        PERSON = "person", "Person"
        CUSTOMER = "customer", "Customer"
        SYSTEM = "system", "System"

    journey = models.ForeignKey(Journey, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=10, choices=Actor.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=60, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    summary = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    proposal = models.ForeignKey(
        "ProposedAction", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["journey", "id"], name="event_journey_id"),
            models.Index(fields=["kind", "at"], name="event_kind_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Events are append-only; write a new event instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any):
        raise ValueError("Events are append-only.")

    @property
    def actor_label(self) -> str:
        if self.actor_user_id:
            return self.actor_user.get_username()
        if self.actor_agent_id:
            return self.actor_agent.name
        return self.get_actor_kind_display()


class ProposedActionQuerySet(models.QuerySet["ProposedAction"]):
    def pending(self) -> ProposedActionQuerySet:
        return self.filter(status=ProposedAction.Status.PENDING)

    def ready_to_execute(self) -> ProposedActionQuerySet:
        return self.filter(status__in=[ProposedAction.Status.AUTO_APPROVED, ProposedAction.Status.APPROVED])


class ProposedAction(models.Model):
    """An action an agent or a person wants to take, with its policy decision and outcome.

    Lifecycle: proposed → auto_approved | pending | denied; pending → approved | rejected |
    expired | withdrawn; approved / auto_approved → executed | failed. The status changes only
    through the named transitions of ``journeys.lifecycle.proposal`` (conditional UPDATEs, so a
    race has one winner).
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        AUTO_APPROVED = "auto_approved", "Auto-approved"
        PENDING = "pending", "Pending approval"
        DENIED = "denied", "Denied"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXECUTED = "executed", "Executed"
        FAILED = "failed", "Failed"

    class Effect(models.TextChoices):
        ALLOW = "allow", "Allow"
        REQUIRE_APPROVAL = "require_approval", "Requires approval"
        REQUIRE_TWO_APPROVALS = "require_two_approvals", "Requires two approvals"
        DENY = "deny", "Deny"

    journey = models.ForeignKey(Journey, on_delete=models.PROTECT, related_name="proposals")
    action_type = models.ForeignKey(ActionType, on_delete=models.PROTECT, related_name="proposals")
    params = models.JSONField(default=dict)
    explanation = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True)
    proposed_by_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    proposed_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The person who wrote the current parameters with an edit that did more than narrow them:
    # from then on they are its maker, and their approval does not count (four-eyes).
    maker_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    step = models.CharField(max_length=60)
    epoch = models.PositiveIntegerField(default=0)
    # Makes every effect happen once: the executor hands it to the core system.
    idempotency_key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED)
    decision_effect = models.CharField(max_length=30, choices=Effect.choices, blank=True)
    decision_rule = models.CharField(max_length=200, blank=True, help_text="The rule that decided")
    decision_explanation = models.TextField(blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    executed_at = models.DateTimeField(null=True, blank=True)
    # A reviewer reading a pending proposal claims it, so two people do not read the same item;
    # the claim lapses at ``claimed_until`` and is cleared by any decision.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)

    objects = ProposedActionQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Only an executed or failed proposal has an execution time.
            models.CheckConstraint(
                condition=models.Q(status__in=["executed", "failed"]) | models.Q(executed_at__isnull=True),
                name="proposal_executed_at_only_when_carried_out",
            ),
            # Nobody has decided a proposal that is still pending.
            models.CheckConstraint(
                condition=~models.Q(status__in=["pending", "proposed"]) | models.Q(decided_by__isnull=True),
                name="proposal_pending_undecided",
            ),
            # Only a pending proposal is claimed for review, and a claim has an end.
            models.CheckConstraint(
                condition=models.Q(claimed_by__isnull=True, claimed_until__isnull=True)
                | models.Q(status="pending", claimed_by__isnull=False, claimed_until__isnull=False),
                name="proposal_claimed_only_when_pending",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="proposal_status_created"),
            models.Index(fields=["journey", "status"], name="proposal_journey_status"),
        ]

    def __str__(self) -> str:
        return f"{self.action_type.key}({self.params_summary})"

    def claim_holder(self, now=None):
        """Who is reading this proposal now (their claim has not lapsed), or None."""
        if self.claimed_by_id is None or self.claimed_until is None:
            return None
        return self.claimed_by if self.claimed_until > (now or timezone.now()) else None

    @property
    def proposer_label(self) -> str:
        if self.proposed_by_user_id:
            return self.proposed_by_user.get_username()
        if self.proposed_by_agent_id:
            return self.proposed_by_agent.name
        return "—"

    @property
    def params_summary(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items())

    @property
    def amount(self):
        from decimal import Decimal, InvalidOperation

        if not self.action_type.money_param:
            return None
        try:
            return Decimal(str(self.params.get(self.action_type.money_param)))
        except (InvalidOperation, TypeError):
            return None


class ApprovalLimit(models.Model):
    """The most a team may approve on one journey definition (with ``approve_actions``)."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="approval_limits")
    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="approval_limits")
    limit = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "definition"], name="approval_limit_unique")]

    def __str__(self) -> str:
        return f"{self.team} may approve up to {self.limit} on {self.definition}"
