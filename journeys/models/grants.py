"""Direct foreign keys for django-guardian's object permissions on journey definitions.

With a real foreign key (instead of guardian's generic object id) a grant is deleted with its
definition, so it can never pass to a new definition that happens to reuse the id.
"""

from __future__ import annotations

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .domain import JourneyDefinition


class DefinitionUserPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE)


class DefinitionGroupPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(JourneyDefinition, on_delete=models.CASCADE)
