"""The one registry of the rights people hold per journey definition.

Everything that names a right is derived from ``RIGHTS``: the model's object permissions
(``JourneyDefinition.Meta.permissions``), the access helpers' keys (``journeys.access.PERMS``),
the teams page's grant matrix and labels, the rights whose addition waits for a second admin,
and the navigation's keys (``console.navigation``).

Six rights are guardian object permissions on ``JourneyDefinition``; the seventh, unmask, is a
team's ``review.SensitiveDataGrant`` on a definition (it carries a stated reason each time).
This module imports nothing from the models, so the models can import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Right:
    key: str  # what code asks for: user_may(user, "approve", definition)
    codename: str  # the guardian permission's codename ("" for unmask: a grant row, not a permission)
    description: str  # the model permission's name
    label: str  # the teams page's column
    governed: bool = False  # adding it widens what people may do with money, data or agents: two admins

    @property
    def is_object_permission(self) -> bool:
        return bool(self.codename)

    @property
    def perm(self) -> str:
        """The full permission name for ``has_perm`` / guardian (object permissions only)."""
        return f"journeys.{self.codename}"


VIEW = "view"
TAKE_OVER = "take_over"
APPROVE = "approve"
ANNOTATE = "annotate"
AUDIT = "audit"
PAUSE = "pause"
UNMASK = "unmask"

RIGHTS: tuple[Right, ...] = (
    Right(VIEW, "view_journeys", "View journeys of this definition", "View journeys"),
    Right(TAKE_OVER, "take_over", "Take over journeys of this definition", "Take over"),
    Right(APPROVE, "approve_actions", "Approve actions on journeys of this definition", "Approve", governed=True),
    Right(ANNOTATE, "annotate", "Annotate journeys of this definition", "Annotate"),
    Right(AUDIT, "audit", "View the audit trail of this definition", "View audit"),
    Right(PAUSE, "pause_agents", "Pause and resume agents on this definition", "Pause agents", governed=True),
    Right(UNMASK, "", "Unmask sensitive customer fields of this definition", "Unmask sensitive", governed=True),
)
BY_KEY: dict[str, Right] = {right.key: right for right in RIGHTS}
OBJECT_RIGHTS: tuple[Right, ...] = tuple(right for right in RIGHTS if right.is_object_permission)
BY_CODENAME: dict[str, Right] = {right.codename: right for right in OBJECT_RIGHTS}

# Derived views the rest of the code uses.
DEFINITION_PERMISSIONS: list[tuple[str, str]] = [(right.codename, right.description) for right in OBJECT_RIGHTS]
PERMS: dict[str, str] = {right.key: right.perm for right in OBJECT_RIGHTS}
PERM_CODES: list[str] = [right.codename for right in OBJECT_RIGHTS]
PERM_LABELS: dict[str, str] = {right.codename: right.label for right in OBJECT_RIGHTS}
GOVERNED_PERMS: set[str] = {right.codename for right in OBJECT_RIGHTS if right.governed}
