from .control import AgentPause
from .domain import (
    ActionType,
    Agent,
    ApprovalLimit,
    DefinitionVersion,
    Event,
    ExceptionKind,
    Journey,
    JourneyDefinition,
    ProposedAction,
)
from .grants import DefinitionGroupPermission, DefinitionUserPermission, OrganisationGrant, holds_organisation_right

__all__ = [
    "ActionType",
    "Agent",
    "AgentPause",
    "ApprovalLimit",
    "DefinitionGroupPermission",
    "DefinitionUserPermission",
    "DefinitionVersion",
    "Event",
    "ExceptionKind",
    "Journey",
    "JourneyDefinition",
    "OrganisationGrant",
    "ProposedAction",
    "holds_organisation_right",
]
