"""Approvals of pending proposals and the after-the-fact review of auto-approved ones."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from journeys.models import ProposedAction

from .scopes import OnTimeout, PermissionScope


class ApprovalRequest(models.Model):
    """What a pending proposal waits for: the rule that asked for approval, its timeout and
    what happens when the timeout runs out. Written by the policy engine with the decision."""

    proposal = models.OneToOneField(ProposedAction, on_delete=models.CASCADE, related_name="approval_request")
    scope = models.ForeignKey(PermissionScope, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The service user behind the proposer (the agent's user, or the person); four-eyes uses it.
    proposer_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    timeout_minutes = models.PositiveIntegerField()
    on_timeout = models.CharField(max_length=10, choices=OnTimeout.choices, default=OnTimeout.FALLBACK)
    escalate_to = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    escalated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"approval of {self.proposal_id}"


class Approval(models.Model):
    """One person's approval of a proposal (an edit & approve carries the before and after).

    The database, not only the view, enforces four-eyes: the approver is never the proposer
    (check constraint) and nobody approves the same proposal twice (unique while not dropped).
    An edit drops the earlier approvals (``dropped_at``), which then no longer count.
    """

    proposal = models.ForeignKey(ProposedAction, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposer_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who wrote the parameters being approved with a widening edit; derived by a trigger from the
    # proposal, like the proposer, so the check constraint below cannot be side-stepped.
    maker_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    edited = models.BooleanField(default=False)
    params_before = models.JSONField(default=dict)
    params_after = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    dropped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(approver=models.F("proposer_user")), name="approval_not_by_proposer"
            ),
            models.CheckConstraint(condition=~models.Q(approver=models.F("maker_user")), name="approval_not_by_maker"),
            models.UniqueConstraint(
                fields=["proposal", "approver"],
                condition=models.Q(dropped_at__isnull=True),
                name="approval_once_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved {self.proposal_id}"


class ReviewSample(models.Model):
    """An auto-approved action picked at random for a person to check after the fact."""

    class Verdict(models.TextChoices):
        OPEN = "", "Not reviewed"
        FINE = "fine", "Fine"
        WRONG = "wrong", "Wrong"

    proposal = models.OneToOneField(ProposedAction, on_delete=models.CASCADE, related_name="review_sample")
    sampled_at = models.DateTimeField(default=timezone.now)
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True, default="")
    note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sampled_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(verdict="") | models.Q(reviewed_by__isnull=False), name="sample_verdict_has_reviewer"
            ),
        ]

    def __str__(self) -> str:
        return f"sample of {self.proposal_id}"
