"""Bounded parameters: an action may only name bank resources of the journey's customer.

Every parameter that names a bank resource (customer, account, card, transaction, case) says so in
its action type's schema (``Param.resource``). Before the policy engine sees a proposal, the
core bank is asked — in one batch — who owns each named resource; a resource of another customer,
or one the bank does not know, refuses the proposal with a reason a person can read ("account
ACC-000001 does not belong to CUST-00086"). The refusal is an ``exception`` event of kind
``out_of_bounds`` (which opens an exception case) on the journey.

The check sits where every path goes through: the ``propose`` transition
(``journeys.lifecycle.proposal``: the agent's turn, a person in control, any later entry point)
and Edit & approve. Cumulative limits per customer
count against ``money_owner`` — the owner of the account the money goes to — so no path routes
money past a customer's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import events
from .actions import ACTION_SPECS
from .corebank import CoreBankError, get_core_bank
from .corebank.base import ResourceKind
from .models import Event, ExceptionKind, Journey, ProposedAction
from .policy import Decision

RULE = "bounded parameters"
EXCEPTION_KIND = ExceptionKind.OUT_OF_BOUNDS


@dataclass(frozen=True)
class Violation:
    param: str
    kind: str
    reference: str
    owner: str | None
    customer_ref: str
    unavailable: bool = False

    @property
    def message(self) -> str:
        label = ResourceKind(self.kind).label if self.kind in ResourceKind.values else self.kind
        if self.unavailable:
            return f"the core bank could not confirm that {label} {self.reference} belongs to {self.customer_ref}"
        if self.kind == ResourceKind.CUSTOMER and self.reference == self.customer_ref:
            return f"customer {self.reference} is not known to the core bank"
        if self.kind == ResourceKind.CUSTOMER:
            return f"customer {self.reference} is not the journey's customer {self.customer_ref}"
        if self.owner is None:
            return (
                f"{label} {self.reference} is not known to the core bank, so it does not belong to {self.customer_ref}"
            )
        return f"{label} {self.reference} does not belong to {self.customer_ref}"

    def as_data(self) -> dict[str, Any]:
        return {"param": self.param, "kind": self.kind, "reference": self.reference, "owner": self.owner}


def check_bounded(action_key: str, params: dict[str, Any], customer_ref: str) -> list[Violation]:
    """Every resource ``params`` names that ``customer_ref`` does not own (empty: in bounds).

    ``params`` are validated parameters (``validate_params``). One question to the core bank per
    call; a bank that cannot answer makes every named resource a violation (fail closed).
    """
    spec = ACTION_SPECS.get(action_key)
    if spec is None:
        return []
    named = [
        (name, kind, str(params[name]))
        for name, kind in spec.resource_params().items()
        if params.get(name) not in (None, "")
    ]
    if not named:
        return []
    try:
        owners = get_core_bank().resource_owners([(kind, ref) for _, kind, ref in named])
    except CoreBankError:
        return [Violation(name, kind, ref, None, customer_ref, unavailable=True) for name, kind, ref in named]
    return [
        Violation(name, kind, ref, owners.get((kind, ref)), customer_ref)
        for name, kind, ref in named
        if owners.get((kind, ref)) != customer_ref
    ]


def refusal_text(violations: list[Violation]) -> str:
    reasons = "; ".join(v.message for v in violations)
    return f"Refused: {reasons}. An action may only name the journey's own customer's resources."


def _record_refusal(
    journey: Journey,
    *,
    action_key: str,
    violations: list[Violation],
    proposal: ProposedAction | None,
    user: Any = None,
    edit: bool = False,
) -> str:
    """The ``exception`` event of a refusal (it opens an exception case). Caller holds the lock."""
    text = refusal_text(violations)
    what = "An edit of " if edit else ""
    events.record(
        journey,
        Event.Kind.EXCEPTION,
        f"{what}{ACTION_SPECS[action_key].name}: {text}",
        actor_kind=Event.Actor.PERSON if user is not None else Event.Actor.SYSTEM,
        actor_user=user,
        proposal=proposal,
        data={
            "kind": EXCEPTION_KIND,
            "rule": RULE,
            "cause": ", ".join(sorted({f"{v.kind} of another customer" for v in violations})),
            "proposal": proposal.pk if proposal is not None else None,
            "edit": edit,
            "violations": [v.as_data() for v in violations],
        },
    )
    return text


def bounds_decision(journey: Journey, proposal: ProposedAction) -> tuple[Decision, list[Violation]] | None:
    """The refusal of a proposal that names another customer's resources, with what it names;
    or None when it is in bounds (the policy engine decides). Reads only: the refusal is
    recorded by ``bounds_record_refusal`` once the proposal is written. Caller holds the
    journey lock."""
    violations = check_bounded(proposal.action_type.key, proposal.params, journey.customer_ref)
    if not violations:
        return None
    return Decision(effect=ProposedAction.Effect.DENY, rule=RULE, explanation=refusal_text(violations)), violations


def bounds_record_refusal(journey: Journey, proposal: ProposedAction, violations: list[Violation]) -> None:
    """Record the refusal ``bounds_decision`` found, for the proposal now written."""
    _record_refusal(
        journey,
        action_key=proposal.action_type.key,
        violations=violations,
        proposal=proposal,
        user=proposal.proposed_by_user,
    )


def bounds_refuse_edit(journey: Journey, proposal: ProposedAction, params: dict[str, Any], *, user: Any) -> str | None:
    """The refusal of an edit that names another customer's resources, recorded (the proposal is
    left as it was); or None when the edit is in bounds. Caller holds the journey lock."""
    key = proposal.action_type.key
    violations = check_bounded(key, params, journey.customer_ref)
    if not violations:
        return None
    return _record_refusal(journey, action_key=key, violations=violations, proposal=proposal, user=user, edit=True)


def money_owner(action_key: str, params: dict[str, Any], customer_ref: str) -> str:
    """Whose money limit an action counts against: the owner of the account the money goes to
    (``ActionSpec.destination_param``), else the journey's customer."""
    spec = ACTION_SPECS.get(action_key)
    destination = spec.destination_param if spec else ""
    if not destination or params.get(destination) in (None, ""):
        return customer_ref
    kind = spec.params[destination].resource or ResourceKind.ACCOUNT
    reference = str(params[destination])
    try:
        owner = get_core_bank().resource_owners([(kind, reference)]).get((kind, reference))
    except CoreBankError:
        owner = None
    return owner or customer_ref
