"""The audit trail: append-only, hash-chained records, signed checkpoints, verification runs.

``AuditRecord`` and ``AuditCheckpoint`` rows are written by ``review.audit.chain`` only. The
database refuses UPDATE, DELETE and TRUNCATE on both tables (triggers in migration 0001), and
the models refuse them too, so neither the ORM nor a careless script can change history.

Audit rows deliberately hold plain ids and labels instead of foreign keys: the trail must
outlive (and never be cascaded by) the rows it talks about.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from journeys.models import Event, JourneyDefinition

GOVERNANCE_CHAIN = "governance"


def journey_chain(journey_id: int) -> str:
    return f"journey:{journey_id}"


class AppendOnly(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("The audit trail is append-only; append a new record instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any):
        raise ValueError("The audit trail is append-only.")


# Journey event kinds that are never written as journey events: a pause is a governance record.
_NOT_JOURNEY_RECORDS = {Event.Kind.PAUSED, Event.Kind.RESUMED}
# Records that are not journey events: break glass on a journey's chain, the rest on governance.
_OTHER_KINDS = [
    ("BREAK_GLASS", ("break_glass", "Sensitive field unmasked")),
    ("PAUSE", ("pause", "Agents paused")),
    ("RESUME", ("resume", "Agents resumed")),
    ("LABEL_CHANGE", ("label_change", "Exception label change")),
    ("TEAM_CHANGE", ("team_change", "Team change")),
    ("GRANT_CHANGE", ("grant_change", "Grant change (Teams page)")),
    ("GRANT_ADDED", ("grant_added", "Grant added")),
    ("GRANT_UPDATED", ("grant_updated", "Grant changed")),
    ("GRANT_REMOVED", ("grant_removed", "Grant removed")),
    ("MEMBERSHIP_CHANGE", ("membership_change", "Team membership change")),
    ("LOGIN_FAILED", ("login_failed", "Failed login")),
    ("LOGIN_LOCKOUT", ("login_lockout", "Login lockout")),
    ("GOVERNANCE_REQUESTED", ("governance_requested", "Governance change requested")),
    ("GOVERNANCE_APPROVED", ("governance_approved", "Governance change approved")),
    ("GOVERNANCE_REJECTED", ("governance_rejected", "Governance change rejected")),
    ("GOVERNANCE_EXPIRED", ("governance_expired", "Governance change expired")),
    ("AUDIT_EXPORT", ("audit_export", "Audit export")),
    ("API_CALL", ("api_call", "API call")),
    ("API_TOKEN_CREATED", ("api_token_created", "API token created")),
    ("API_TOKEN_REVOKED", ("api_token_revoked", "API token revoked")),
    ("WEBHOOK_CREATED", ("webhook_created", "Webhook created")),
    ("WEBHOOK_SECRET_ROTATED", ("webhook_secret_rotated", "Webhook secret rotated")),
]


class AuditRecord(AppendOnly):
    """One link of a hash chain: a journey's chain (``journey:<id>``) or ``governance``.

    ``hash`` = sha256 of the canonical JSON of the header fields, which include ``prev_hash``
    and ``payload_sha256`` (see ``review.audit.offline.record_hash``).
    """

    class Actor(models.TextChoices):
        AGENT = "agent", "Agent"
        PERSON = "person", "Person"
        CUSTOMER = "customer", "Customer"
        SYSTEM = "system", "System"

    # Every kind of record the trail holds: each journey event kind (one list, Event.Kind) and
    # the governance and break-glass kinds. The writers refuse any other kind, and the search
    # offers exactly these.
    Kind = models.TextChoices(
        "Kind",
        [(k.name, (k.value, k.label)) for k in Event.Kind if k not in _NOT_JOURNEY_RECORDS]
        + [item for item in _OTHER_KINDS if item[1][0] not in Event.Kind.values],
    )

    chain = models.CharField(max_length=40)
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)
    actor_kind = models.CharField(max_length=10, choices=Actor.choices)
    actor_label = models.CharField(max_length=150, blank=True)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_agent_id = models.BigIntegerField(null=True, blank=True)
    journey_id = models.BigIntegerField(null=True, blank=True)
    definition_id = models.BigIntegerField(null=True, blank=True)
    customer_ref = models.CharField(max_length=40, blank=True)
    action_type = models.CharField(max_length=60, blank=True)
    decision = models.CharField(max_length=40, blank=True)
    proposal_id = models.BigIntegerField(null=True, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True, unique=True)
    summary = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    payload_sha256 = models.CharField(max_length=64)
    # Salts the commitments to sensitive payload values (``offline.payload_digest``). Not part of
    # the hash itself: a wrong salt gives a wrong digest. Withheld from masked exports.
    payload_salt = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique")]
        # Keyset pagination walks ``id`` backwards; each search field gets an (field, id) index
        # so a filtered page is an index range scan, never a scan over the whole trail.
        indexes = [
            models.Index(fields=["journey_id", "id"], name="audit_journey_id"),
            models.Index(fields=["definition_id", "id"], name="audit_definition_id"),
            models.Index(fields=["customer_ref", "id"], name="audit_customer_id"),
            models.Index(fields=["actor_label", "id"], name="audit_actor_id"),
            models.Index(fields=["kind", "id"], name="audit_kind_id"),
            models.Index(fields=["action_type", "id"], name="audit_action_id"),
            models.Index(fields=["decision", "id"], name="audit_decision_id"),
            models.Index(fields=["at"], name="audit_at"),
        ]

    def __str__(self) -> str:
        return f"A-{self.pk} {self.chain}#{self.seq} {self.kind}"

    @property
    def kind_label(self) -> str:
        try:
            return str(self.Kind(self.kind).label)
        except ValueError:  # a record written before its kind was named keeps its raw kind
            return self.kind.replace("_", " ").capitalize()


class AuditCheckpoint(AppendOnly):
    """A signed snapshot of chain heads: ``heads`` maps chain → [seq, hash] for every chain that
    grew since the previous checkpoint. Checkpoints chain to each other too, and ``signature`` is
    an HMAC of ``hash`` with the server's audit key: a copy exported outside the database catches
    a full re-hash of the records by someone with database superuser rights."""

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now)
    upto_record_id = models.BigIntegerField(default=0)
    heads = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"Checkpoint {self.seq} ({len(self.heads)} chains)"


class AuditArchive(AppendOnly):
    """A signed "archived up to" checkpoint: ``heads`` maps chain → [seq, hash] of the last record
    moved to the archive file ``file_name`` (JSON Lines, verifiable with ``offline.py``). The
    online chain continues at seq + 1, linking to that hash; the database lets a record be
    deleted only when an archive row covers it (and only a role with DELETE, never the app's)."""

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now)
    cutoff = models.DateTimeField()
    heads = models.JSONField(default=dict)
    records = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"Archive {self.seq} ({self.records} records before {self.cutoff:%Y-%m-%d})"


class AuditVerification(models.Model):
    """A run of the verifier, with progress for the compliance page. Not part of the trail."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        BROKEN = "broken", "Broken"
        ERROR = "error", "Error"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    records_checked = models.PositiveBigIntegerField(default=0)
    chains_checked = models.PositiveBigIntegerField(default=0)
    checkpoints_checked = models.PositiveBigIntegerField(default=0)
    first_broken_record_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    # A run started by beat rather than a person.
    scheduled = models.BooleanField(default=False)
    # A failed run stays on every compliance and admin page until someone acknowledges it.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Verification {self.pk}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.PASSED, self.Status.BROKEN, self.Status.ERROR)

    @property
    def percent(self) -> int:
        if self.is_finished:
            return 100
        return int(100 * self.done / self.total) if self.total else 0


class SensitiveDataGrant(models.Model):
    """A team may unmask sensitive customer fields (card number, date of birth, full address) on
    one journey definition, one field at a time, with a stated reason ("break glass").

    A real foreign key, deleted with its definition: a new definition reusing the id starts
    with no grants."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="sensitive_grants")
    definition = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE, related_name="sensitive_grants")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "definition"], name="sensitive_grant_unique")]

    def __str__(self) -> str:
        return f"{self.team} may unmask on {self.definition}"
