"""Maker-checker on governance: a change that widens what anyone may do waits for a second admin.

A ``GovernanceChange`` holds one requested change — a permission scope, a cumulative limit or a
grant — with the state before, the state asked for, what to apply, and who asked and why. It
takes effect only when a different admin approves it (``review.services.governance``); every
move out of ``pending`` is a conditional UPDATE, so two admins deciding at once have one winner.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class GovernanceChange(models.Model):
    class Kind(models.TextChoices):
        SCOPE = "scope", "Permission scope"
        LIMIT = "limit", "Cumulative limit"
        GRANT = "grant", "Grant"
        ORG_GRANT = "org_grant", "Organisation-wide grant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The scope, limit, definition (grants) or team (organisation-wide grants) it changes; None
    # for a scope or limit to create.
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # What the approval applies (the submitted form data, or the grant holder and definition).
    payload = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="governance_change_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "rejected", "expired"]),
                name="governance_change_status_valid",
            ),
            # The maker never checks their own change — enforced by the database, not only the page.
            models.CheckConstraint(
                condition=models.Q(checker__isnull=True) | ~models.Q(checker=models.F("maker")),
                name="governance_change_four_eyes",
            ),
            # Decided exactly when it left pending; an approval always names its checker.
            models.CheckConstraint(
                condition=(models.Q(status="pending", decided_at__isnull=True, checker__isnull=True))
                | (models.Q(decided_at__isnull=False) & ~models.Q(status="pending")),
                name="governance_change_decided_consistent",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="approved") | models.Q(checker__isnull=False),
                name="governance_change_approved_has_checker",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject} ({self.get_status_display().lower()})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    def changed_fields(self) -> list[tuple[str, object, object]]:
        before, after = self.before or {}, self.after or {}
        return [
            (k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
        ]
