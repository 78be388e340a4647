"""Direct foreign keys for django-guardian's object permissions on journey definitions.

With a real foreign key (instead of guardian's generic object id) a grant is deleted with its
definition, so it can never pass to a new definition that happens to reuse the id.
"""

from __future__ import annotations

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .. import rights
from .domain import JourneyDefinition


class DefinitionUserPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE)


class DefinitionGroupPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE)


class OrganisationGrant(models.Model):
    """A right a team holds across the whole organisation, granted as such.

    Reading the organisation-wide audit records (logins, team membership, exports) and the
    global stop button need one of these (or a superuser). Holding ``audit`` or ``pause_agents``
    on every definition that exists today is *not* the same: deleting the one definition a team
    lacked must never widen what it may do.
    """

    class Right(models.TextChoices):
        # The same codenames as the per-definition rights (journeys/rights.py).
        AUDIT = rights.Right.AUDIT.codename, "Audit organisation-wide records"
        PAUSE = rights.Right.PAUSE.codename, "Pause every agent at once"

    team = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="organisation_grants")
    right = models.CharField(max_length=20, choices=Right.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "right"], name="organisation_grant_unique")]

    def __str__(self) -> str:
        return f"{self.team} may {self.get_right_display().lower()}"


def holds_organisation_right(user, right: str) -> bool:
    """Superusers, and members of a team holding an explicit organisation-wide grant."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return OrganisationGrant.objects.filter(team__user=user, right=right).exists()
