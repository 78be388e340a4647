"""Action types: their parameter schemas, validation, and the executor that calls the core bank.

The registry here is the source of truth; ``sync_action_types`` mirrors it into ``ActionType``
rows so proposals, scopes and reports can refer to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connections

from .corebank import get_core_bank
from .corebank.base import ResourceKind
from .models import ActionType, ProposedAction
from .observability import span


class ActionParamsError(ValueError):
    """The parameters do not fit the action type's schema; the message says which and why."""


@dataclass(frozen=True)
class Param:
    type: str  # "str" | "int" | "decimal" | "bool" | "choice"
    required: bool = True
    choices: tuple[str, ...] = ()
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int = 500
    help: str = ""
    # The kind of bank resource the value names (a ``ResourceKind``), or "" for plain data. A
    # resource must belong to the journey's customer (``journeys.bounds``).
    resource: str = ""
    # May a person change it when editing a proposal? Identity parameters (customer, account,
    # card, transaction — every resource) never are: an edit may change how much or why, never
    # to whom (``ActionSpec.editable_params`` ignores the flag on a resource).
    editable: bool = False

    def as_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type, "required": self.required, "editable": self.editable}
        if self.choices:
            schema["choices"] = list(self.choices)
        if self.min is not None:
            schema["min"] = str(self.min)
        if self.max is not None:
            schema["max"] = str(self.max)
        if self.help:
            schema["help"] = self.help
        if self.resource:
            schema["resource"] = self.resource
        return schema


@dataclass(frozen=True)
class ActionSpec:
    key: str
    name: str
    description: str
    params: dict[str, Param] = field(default_factory=dict)
    read_only: bool = False
    money_param: str = ""
    # The parameter naming where the money goes (an account); cumulative limits per customer count
    # against the owner of that destination, not against whoever the journey is about.
    destination_param: str = ""

    def resource_params(self) -> dict[str, str]:
        """Parameter name → resource kind, for every parameter that names a bank resource."""
        return {name: p.resource for name, p in self.params.items() if p.resource}

    @property
    def editable_params(self) -> list[str]:
        return [name for name, p in self.params.items() if p.editable and not p.resource]


def edit_changes(action_key: str, before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], bool]:
    """What an edit changed (parameter names, sorted) and whether it only *narrows*: the money
    parameter alone, to a lower amount. Raises ``ActionParamsError`` naming any parameter the
    action type does not let a person edit."""
    spec = ACTION_SPECS[action_key]
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    fixed = [name for name in changed if name not in spec.editable_params]
    if fixed:
        may = ", ".join(spec.editable_params) or "nothing"
        raise ActionParamsError(f"{', '.join(fixed)} cannot be edited on {spec.name}: only {may} can.")
    narrowing = False
    if changed == [spec.money_param] and spec.money_param:
        try:
            old, new = Decimal(str(before[spec.money_param])), Decimal(str(after[spec.money_param]))
            narrowing = new.is_finite() and old.is_finite() and new < old
        except (InvalidOperation, KeyError):
            narrowing = False
    return changed, narrowing


CUSTOMER = Param("str", help="customer reference", resource=ResourceKind.CUSTOMER)
ACCOUNT = Param("str", help="account number", resource=ResourceKind.ACCOUNT)
CARD = Param("str", help="card token", resource=ResourceKind.CARD)
AMOUNT = Param("decimal", min=Decimal("0.01"), help="amount, two decimals")
EDITABLE_AMOUNT = Param("decimal", min=Decimal("0.01"), help="amount, two decimals", editable=True)

ACTION_SPECS: dict[str, ActionSpec] = {
    spec.key: spec
    for spec in [
        ActionSpec(
            "lookup_account",
            "Look up account",
            "Read the customer's account, cards and flags.",
            {"customer": CUSTOMER},
            read_only=True,
        ),
        ActionSpec(
            "lookup_transactions",
            "Look up transactions",
            "List recent card transactions.",
            {
                "card": CARD,
                "days": Param("int", required=False, min=Decimal(1), max=Decimal(3650)),
                "since": Param("str", required=False, help="ISO time"),
            },
            read_only=True,
        ),
        ActionSpec(
            "lookup_fees",
            "Look up fees",
            "List fees charged on the account.",
            {"account": ACCOUNT, "days": Param("int", required=False, min=Decimal(1), max=Decimal(3650))},
            read_only=True,
        ),
        ActionSpec(
            "lookup_account_changes",
            "Look up account changes",
            "Recent changes of contact details.",
            {"customer": CUSTOMER, "days": Param("int", required=False, min=Decimal(1), max=Decimal(3650))},
            read_only=True,
        ),
        ActionSpec(
            "validate_address",
            "Validate address",
            "Normalise an address and check it exists.",
            {"address": Param("str", max_length=200)},
            read_only=True,
        ),
        ActionSpec(
            "check_verification_code",
            "Check verification code",
            "Compare a one-time code.",
            {"customer": CUSTOMER, "code": Param("str", max_length=12)},
            read_only=True,
        ),
        ActionSpec(
            "send_message",
            "Send message",
            "Send the customer a message on their channel.",
            {"customer": CUSTOMER, "text": Param("str", max_length=2000, editable=True)},
        ),
        ActionSpec(
            "send_verification_code",
            "Send verification code",
            "One-time code to the phone on file.",
            {"customer": CUSTOMER, "channel": Param("choice", choices=("sms", "email"))},
        ),
        ActionSpec(
            "issue_refund",
            "Issue refund",
            "Credit money to the customer's account.",
            {
                "account": ACCOUNT,
                "amount": EDITABLE_AMOUNT,
                "reason": Param("str", max_length=120, editable=True),
                "customer": Param("str", required=False, help="customer reference", resource=ResourceKind.CUSTOMER),
            },
            money_param="amount",
            destination_param="account",
        ),
        ActionSpec(
            "block_card",
            "Block card",
            "Stop the card from being used.",
            {
                "card": CARD,
                "reason": Param("choice", choices=("lost", "stolen", "fraud", "customer request"), editable=True),
            },
        ),
        ActionSpec(
            "open_case",
            "Open case",
            "File a case (e.g. a dispute with the card network).",
            {
                "customer": CUSTOMER,
                "kind": Param("choice", choices=("dispute", "complaint", "fraud"), editable=True),
                "transaction": Param(
                    "str", required=False, help="core-bank transaction id", resource=ResourceKind.TRANSACTION
                ),
                "amount": Param("decimal", required=False, editable=True),
            },
            money_param="amount",
        ),
        ActionSpec(
            "order_card",
            "Order replacement card",
            "Order a new card to an address.",
            {
                "account": ACCOUNT,
                "address": Param("str", max_length=200),
                "expedited": Param("bool", editable=True),
                "premium": Param("bool", required=False),
                "address_recently_changed": Param("bool", required=False),
            },
        ),
        ActionSpec(
            "update_address",
            "Update address",
            "Write a new postal address.",
            {
                "customer": CUSTOMER,
                # The new address is what the action writes, not whose: a person may correct it
                # (a widening edit, so a second person approves it).
                "address": Param("str", max_length=200, editable=True),
                "recent_changes": Param("bool", required=False),
            },
        ),
        ActionSpec(
            "send_letter",
            "Send letter",
            "Post a letter.",
            {
                "customer": CUSTOMER,
                "address": Param("str", max_length=200),
                "text": Param("str", max_length=2000, editable=True),
            },
        ),
        ActionSpec(
            "escalate_risk",
            "Escalate to risk",
            "Create a risk review for people.",
            {"customer": CUSTOMER, "reason": Param("str", max_length=300, editable=True)},
        ),
        ActionSpec(
            "request_document",
            "Request document",
            "Ask the customer for a document.",
            {"customer": CUSTOMER, "document": Param("str", max_length=120, editable=True)},
        ),
    ]
}


def validate_params(action_key: str, params: Any) -> dict[str, Any]:
    """Return JSON-safe, normalised parameters or raise ActionParamsError naming the problem."""
    spec = ACTION_SPECS.get(action_key)
    if spec is None:
        raise ActionParamsError(f"Unknown action type {action_key!r}.")
    if not isinstance(params, dict):
        raise ActionParamsError("Parameters must be an object.")
    unknown = set(params) - set(spec.params)
    if unknown:
        raise ActionParamsError(f"Unknown parameter(s) for {action_key}: {', '.join(sorted(unknown))}.")
    clean: dict[str, Any] = {}
    for name, p in spec.params.items():
        value = params.get(name)
        if value is None or value == "":
            if p.required:
                raise ActionParamsError(f"{action_key} needs the parameter {name!r}.")
            continue
        clean[name] = _coerce(action_key, name, p, value)
    return clean


# Numbers are read from plain ASCII text only: no exponents ("1e30"), no "NaN"/"Infinity", no
# underscores or non-ASCII digits (which ``Decimal`` and ``int`` would otherwise accept), and a
# bounded length, so no input can make the arithmetic below raise or run long.
DECIMAL_TEXT = re.compile(r"[+-]?[0-9]{1,20}(?:\.[0-9]{1,20})?")
INT_TEXT = re.compile(r"[+-]?[0-9]{1,18}")
# The largest amount any column that stores one can hold (``DecimalField(max_digits=12,
# decimal_places=2)``); larger amounts are refused here rather than by the database.
MAX_AMOUNT = Decimal("9999999999.99")
MAX_INT = 2**31 - 1
NOT_FINITE = {"nan", "snan", "inf", "infinity"}


def _number_text(value: Any) -> str:
    """The text of a number as a person or an agent sent it (JSON numbers arrive as int/float)."""
    if isinstance(value, bool):
        return ""  # True is not 1 here: a boolean where a number belongs is a mistake
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return ""


def coerce_param(action_key: str, name: str, value: Any) -> Any:
    """One parameter, checked and normalised as ``validate_params`` does (for forms that report
    every parameter's error at once)."""
    return _coerce(action_key, name, ACTION_SPECS[action_key].params[name], value)


def _coerce(action_key: str, name: str, p: Param, value: Any) -> Any:
    where = f"{action_key}.{name}"
    if p.type == "decimal":
        text = _number_text(value)
        if text.lower().lstrip("+-") in NOT_FINITE:
            raise ActionParamsError(f"{where} must be a finite amount.")
        if not DECIMAL_TEXT.fullmatch(text):
            raise ActionParamsError(f"{where} must be an amount such as 12.50, not {str(value)[:40]!r}.")
        number = Decimal(text)
        if number != number.quantize(Decimal("0.01")):
            raise ActionParamsError(f"{where} has more than two decimals.")
        number = number.quantize(Decimal("0.01")) + 0  # "+ 0" turns a negative zero into 0.00
        if p.min is not None and number < p.min:
            raise ActionParamsError(f"{where} must be at least {p.min}.")
        maximum = MAX_AMOUNT if p.max is None else min(p.max, MAX_AMOUNT)
        if abs(number) > maximum:
            raise ActionParamsError(f"{where} must be at most {maximum}.")
        return str(number)
    if p.type == "int":
        text = _number_text(value)
        if not INT_TEXT.fullmatch(text):
            raise ActionParamsError(f"{where} must be a whole number, not {str(value)[:40]!r}.")
        number = int(text)
        if p.min is not None and number < p.min:
            raise ActionParamsError(f"{where} must be at least {p.min}.")
        maximum = MAX_INT if p.max is None else min(int(p.max), MAX_INT)
        if number > maximum:
            raise ActionParamsError(f"{where} must be at most {maximum}.")
        return number
    if p.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off"}:
            return False
        raise ActionParamsError(f"{where} must be true or false.")
    text = str(value).strip()
    if len(text) > p.max_length:
        raise ActionParamsError(f"{where} is longer than {p.max_length} characters.")
    if p.type == "choice" and text not in p.choices:
        raise ActionParamsError(f"{where} must be one of {', '.join(p.choices)}.")
    return text


def sync_action_types(*, model: type[ActionType] = ActionType, using: str = "default") -> None:
    """Mirror the registry into ActionType rows (idempotent). Runs after every ``migrate``."""
    for spec in ACTION_SPECS.values():
        model.objects.using(using).update_or_create(
            key=spec.key,
            defaults={
                "name": spec.name,
                "description": spec.description,
                "param_schema": {k: p.as_schema() for k, p in spec.params.items()},
                "is_read_only": spec.read_only,
                "money_param": spec.money_param,
            },
        )


def sync_action_types_after_migrate(sender: Any, *, using: str, apps: Any = None, **kwargs: Any) -> None:
    """``post_migrate``: every install gets the registry's action types, with or without a seed."""
    try:
        model = apps.get_model("journeys", "ActionType") if apps is not None else ActionType
    except LookupError:  # journeys migrated back to zero
        return
    if model._meta.db_table not in connections[using].introspection.table_names():
        return
    sync_action_types(model=model, using=using)


def execute(proposal: ProposedAction) -> dict[str, Any]:
    """Carry out an approved proposal through the core bank, keyed by its idempotency key.

    Raises ``CoreBankUnavailable`` (retry) or ``CoreBankRejected`` / ``ActionParamsError`` (give up).
    """
    key = proposal.action_type.key
    spec = ACTION_SPECS[key]
    params = validate_params(key, proposal.params)
    bank = get_core_bank()
    method = getattr(bank, key)
    kwargs: dict[str, Any] = {}
    for name, value in params.items():
        if spec.params[name].type == "decimal":
            value = Decimal(value)
        kwargs[name] = value
    # Parameters that inform the policy engine but are not the core system's business.
    for informational in ("premium", "address_recently_changed", "recent_changes"):
        kwargs.pop(informational, None)
    if key == "issue_refund":
        kwargs.pop("customer", None)
    if key == "open_case":
        kwargs.setdefault("transaction", None)
        kwargs.setdefault("amount", None)
    if not spec.read_only:
        kwargs["idempotency_key"] = proposal.idempotency_key
    with span(f"corebank.{key}", journey_id=proposal.journey_id, proposal_id=proposal.pk, action=key):
        return method(**kwargs)
