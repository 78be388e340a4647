from .corebank import (
    CoreAccount,
    CoreCard,
    CoreCase,
    CoreCustomer,
    CoreEffect,
    CoreTransaction,
    CoreVerificationCode,
)
from .control import AgentPause
from .domain import (
    ActionType,
    ApprovalLimit,
    Agent,
    DefinitionVersion,
    Event,
    Journey,
    JourneyDefinition,
    ProposedAction,
)
from .grants import DefinitionGroupPermission, DefinitionUserPermission

__all__ = [
    "ActionType",
    "AgentPause",
    "ApprovalLimit",
    "Agent",
    "CoreAccount",
    "CoreCard",
    "CoreCase",
    "CoreCustomer",
    "CoreEffect",
    "CoreTransaction",
    "CoreVerificationCode",
    "DefinitionGroupPermission",
    "DefinitionUserPermission",
    "DefinitionVersion",
    "Event",
    "Journey",
    "JourneyDefinition",
    "ProposedAction",
]
