"""The API's request and response shapes. The OpenAPI schema is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field, model_validator

from journeys.models import Journey

MAX_JSON_DEPTH = 8


def _check_json(value: Any, depth: int = 0) -> None:
    """PostgreSQL text and jsonb hold neither NUL characters nor lone surrogates: refuse them
    here, with a message, instead of failing in the database."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


class SafeInput(Schema):
    @model_validator(mode="after")
    def _storable(self) -> SafeInput:
        _check_json(self.model_dump())
        return self


Text = Annotated[str, Field(min_length=1, max_length=2000)]


class Error(Schema):
    error: str = Field(description="A short machine-readable code, e.g. `not_found`, `taken_over`.")
    message: str = Field(description="What went wrong, for a person.")
    detail: list[dict[str, Any]] | None = Field(None, description="Per-field problems of invalid input.")


class JourneyIn(SafeInput):
    definition: str = Field(min_length=1, max_length=60, description="Journey definition key.", examples=["fee_refund"])
    customer_ref: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$", examples=["CUST-00001"])
    channel: Journey.Channel = Journey.Channel.CHAT
    message: str = Field(
        "", max_length=2000, description="The customer's first message.", examples=["I was charged a fee twice."]
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="What the customer asked for (the journey's initial request).",
        examples=[{"fee": "overdraft"}],
    )


class JourneyOut(Schema):
    id: int
    definition: str
    definition_version: int
    customer_ref: str
    channel: str
    status: str
    waiting_on: str
    current_step: str
    agent: str | None
    in_control: str | None = Field(description="Username of the person who took it over, if any.")
    agents_paused: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    events_url: str
    console_url: str


class EventOut(Schema):
    id: int
    kind: str
    at: datetime
    actor_kind: str
    actor: str
    step: str
    summary: str
    data: dict[str, Any]
    proposal: int | None


class EventPage(Schema):
    events: list[EventOut]
    next_after: int = Field(description="Pass as `after` to read what happened since.")
    has_more: bool


class MessageIn(SafeInput):
    text: Text
    data: dict[str, Any] = Field(default_factory=dict, description="Structured answer, e.g. a chosen option.")
    intent: str = Field("reply", min_length=1, max_length=40, pattern=r"^[a-z_]+$")


class MessageOut(Schema):
    journey: JourneyOut
    event: int = Field(description="Id of the message's event.")


class ProposalIn(SafeInput):
    action: str = Field(min_length=1, max_length=60, description="Action type key.", examples=["issue_refund"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters, checked against the action type's own schema.",
        examples=[{"account": "ACC-000001", "amount": "20.00", "reason": "fee reversal"}],
    )
    explanation: Text
    confidence: float | None = Field(None, ge=0, le=1)
    agent_version: str = Field("", max_length=60, description="Your agent's version, recorded as provenance.")
    model: str = Field("", max_length=120, description="The model that chose the action, if any.")


class DecisionOut(Schema):
    effect: str
    rule: str
    explanation: str
    required_approvals: int


class ProposalOut(Schema):
    id: int
    journey: int
    action: str
    params: dict[str, Any]
    explanation: str
    confidence: float | None
    proposed_by: str
    status: str = Field(description="`auto_approved`/`executed`, `pending`, `denied`, `approved`, `rejected`…")
    decision: DecisionOut
    expires_at: datetime | None
    decided_by: str | None
    decision_reason: str
    result: dict[str, Any] | None
    error: str
    created_at: datetime
    url: str
    console_url: str
