"""The one registry of the rights people hold per journey definition.

Everything that names a right is derived from ``Right``: the model's object permissions
(``JourneyDefinition.Meta.permissions``), the access helpers (``journeys.access``: they take a
``Right`` member, never a string), the teams page's grant matrix and labels, the rights whose
addition waits for a second admin, and the navigation (``console.navigation``).

Six rights are guardian object permissions on ``JourneyDefinition``; the seventh, unmask, is a
team's ``review.SensitiveDataGrant`` on a definition (it carries a stated reason each time).
This module imports nothing from the models, so the models can import it.
"""

from __future__ import annotations

from enum import Enum


class Right(Enum):
    """A right on a journey definition. Code asks ``user_may(user, Right.APPROVE, definition)``."""

    # key, guardian codename ("" for unmask: a grant row, not a permission), the model
    # permission's name, the teams page's column, governed (adding it widens what people may do
    # with money, data or agents: a second admin approves).
    VIEW = ("view", "view_journeys", "View journeys of this definition", "View journeys", False)
    TAKE_OVER = ("take_over", "take_over", "Take over journeys of this definition", "Take over", False)
    APPROVE = ("approve", "approve_actions", "Approve actions on journeys of this definition", "Approve", True)
    ANNOTATE = ("annotate", "annotate", "Annotate journeys of this definition", "Annotate", False)
    AUDIT = ("audit", "audit", "View the audit trail of this definition", "View audit", False)
    PAUSE = ("pause", "pause_agents", "Pause and resume agents on this definition", "Pause agents", True)
    UNMASK = ("unmask", "", "Unmask sensitive customer fields of this definition", "Unmask sensitive", True)

    def __new__(cls, key: str, codename: str, description: str, label: str, governed: bool) -> Right:
        member = object.__new__(cls)
        member._value_ = key  # Right("approve") is Right.APPROVE
        member.key = key
        member.codename = codename
        member.description = description
        member.label = label
        member.governed = governed
        return member

    @property
    def is_object_permission(self) -> bool:
        return bool(self.codename)

    @property
    def perm(self) -> str:
        """The full permission name for ``has_perm`` / guardian (object permissions only)."""
        if not self.is_object_permission:
            raise ValueError(f"{self.key} is a sensitive-data grant, not a permission")
        return f"journeys.{self.codename}"


RIGHTS: tuple[Right, ...] = tuple(Right)
OBJECT_RIGHTS: tuple[Right, ...] = tuple(right for right in RIGHTS if right.is_object_permission)
BY_CODENAME: dict[str, Right] = {right.codename: right for right in OBJECT_RIGHTS}

# Derived views the rest of the code uses.
DEFINITION_PERMISSIONS: list[tuple[str, str]] = [(right.codename, right.description) for right in OBJECT_RIGHTS]
PERMS: dict[Right, str] = {right: right.perm for right in OBJECT_RIGHTS}
PERM_CODES: list[str] = [right.codename for right in OBJECT_RIGHTS]
PERM_LABELS: dict[str, str] = {right.codename: right.label for right in OBJECT_RIGHTS}
GOVERNED_PERMS: set[str] = {right.codename for right in OBJECT_RIGHTS if right.governed}
