from .corebank import (
    CoreAccount,
    CoreCard,
    CoreCase,
    CoreCustomer,
    CoreEffect,
    CoreTransaction,
    CoreVerificationCode,
)
from .domain import (
    ActionType,
    Agent,
    DefinitionVersion,
    Event,
    Journey,
    JourneyDefinition,
    ProposedAction,
)

__all__ = [
    "ActionType",
    "Agent",
    "CoreAccount",
    "CoreCard",
    "CoreCase",
    "CoreCustomer",
    "CoreEffect",
    "CoreTransaction",
    "CoreVerificationCode",
    "DefinitionVersion",
    "Event",
    "Journey",
    "JourneyDefinition",
    "ProposedAction",
]
