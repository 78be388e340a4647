"""The JSON API, version 1: a thin layer over the services the console's pages use.

Every call authenticates with a bearer token (``Authorization: Bearer hnd_…``) and acts as the
token's user, through the same access helpers as the pages: a journey the user may not view is
a 404, exactly as a direct link would be. POSTs honour ``Idempotency-Key``; every token has a
rate limit (429 with ``Retry-After``); every authenticated call is written to the audit trail
(see ``api.middleware``). Errors are JSON: ``{"error": code, "message": text, "detail": [...]}``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import NinjaAPI, Path, Query, Status
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle

from journeys.access import definitions_for, get_journey_for_user
from journeys.actions import ActionParamsError
from journeys.agents.external import AgentRefused, agent_propose
from journeys.agents.provenance import claimed_provenance
from journeys.control import ControlError, NotAllowed, person_propose
from journeys.models import AgentPause, Event, Journey, JourneyDefinition, ProposedAction
from journeys.services import JourneyError, journey_customer_message, journey_start
from review.audit.masking import mask_data

from . import schemas as s
from .models import ApiToken, IdempotentRequest
from .tokens import token_authenticate

MAX_ID = 2**63 - 1
# Every operation may answer these, each with an ``Error`` body.
codes_4xx = frozenset({400, 401, 404, 409, 413, 422, 429})
EVENT_PAGE = 200


class ApiError(Exception):
    """An answer other than success: status, a machine-readable code and a sentence."""

    def __init__(self, status: int, code: str, message: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


class BearerToken(HttpBearer):
    def __call__(self, request: HttpRequest) -> Any:
        # Before the body is read: an oversized body is refused without reading it.
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"The body is larger than {settings.API_MAX_BODY_BYTES} bytes.")
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = token_authenticate(token)
        if found is not None:
            request.user = found.user  # the same user the pages' access helpers check
        return found


class TokenThrottle(SimpleRateThrottle):
    """Per token: at most ``ApiToken.rate_per_minute`` calls in any sliding minute."""

    scope = "api-token"

    def __init__(self) -> None:
        super().__init__(rate="60/min")

    def get_cache_key(self, request: HttpRequest) -> str | None:
        token = getattr(request, "auth", None)
        return f"throttle_api_token_{token.pk}" if isinstance(token, ApiToken) else None

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        if isinstance(token, ApiToken):
            self.num_requests, self.duration = token.rate_per_minute, 60
        return super().allow_request(request)


api = NinjaAPI(
    title="Handoff API",
    version="1",
    description=(
        "Start journeys, pass customer messages and propose actions as an agent; every call is "
        "checked against the same grants, scopes, takeover fence and stop button as the console. "
        "Authenticate with `Authorization: Bearer <token>`; an admin issues tokens in the console."
    ),
    urls_namespace="api-v1",
    auth=BearerToken(),
    throttle=[TokenThrottle()],
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def _error(request: HttpRequest, status: int, code: str, message: str, detail=None, headers=None) -> HttpResponse:
    response = api.create_response(request, {"error": code, "message": message, "detail": detail}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message, exc.detail)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    detail = [
        {"loc": [str(p) for p in e.get("loc", [])], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors
    ]
    first = detail[0] if detail else {"loc": [], "msg": "invalid"}
    loc = first["loc"]
    where = ".".join(p for p in loc if p not in ("body", "payload")) or (loc[0] if loc else "body")
    return _error(request, 422, "invalid_input", f"{where}: {first['msg']}", detail)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request,
        401,
        "unauthenticated",
        "Send a live token as `Authorization: Bearer <token>`.",
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    return _error(request, 429, "rate_limited", "Too many calls with this token; retry after the given seconds.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, "bad_request", str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "body_too_large", "The body is too large.")


# --- representations ----------------------------------------------------------------------


def journey_out(request: HttpRequest, journey: Journey) -> dict[str, Any]:
    return {
        "id": journey.pk,
        "definition": journey.definition.key,
        "definition_version": journey.version.number,
        "customer_ref": journey.customer_ref,
        "channel": journey.channel,
        "status": journey.status,
        "waiting_on": journey.waiting_on,
        "current_step": journey.current_step,
        "agent": journey.agent.name if journey.agent_id else None,
        "in_control": journey.controller_user.get_username() if journey.controller_user_id else None,
        "agents_paused": AgentPause.objects.covering(journey.definition_id, journey.agent_id).exists(),
        "created_at": journey.created_at,
        "updated_at": journey.updated_at,
        "finished_at": journey.finished_at,
        "events_url": reverse("api-v1:journey_events", kwargs={"journey_id": journey.pk}),
        "console_url": reverse("journey_detail", kwargs={"pk": journey.pk}),
    }


def proposal_out(proposal: ProposedAction) -> dict[str, Any]:
    return {
        "id": proposal.pk,
        "journey": proposal.journey_id,
        "action": proposal.action_type.key,
        "params": mask_data(proposal.params),
        "explanation": proposal.explanation,
        "confidence": proposal.confidence,
        "proposed_by": proposal.proposer_label,
        "status": proposal.status,
        "decision": {
            "effect": proposal.decision_effect,
            "rule": proposal.decision_rule,
            "explanation": proposal.decision_explanation,
            "required_approvals": proposal.required_approvals,
        },
        "expires_at": proposal.expires_at,
        "decided_by": proposal.decided_by.get_username() if proposal.decided_by_id else None,
        "decision_reason": proposal.decision_reason,
        "result": mask_data(proposal.result) if isinstance(proposal.result, dict) else None,
        "error": proposal.error,
        "created_at": proposal.created_at,
        "url": reverse("api-v1:proposal_detail", kwargs={"proposal_id": proposal.pk}),
        "console_url": reverse("review_queue") + f"#proposal-{proposal.pk}",
    }


def _journey(request: HttpRequest, journey_id: int) -> Journey:
    journey = get_journey_for_user(request.user, journey_id)  # 404 for another team's journey
    request.api_journey = journey  # for the call's audit record
    return journey


# --- idempotency --------------------------------------------------------------------------


def idempotent(
    request: HttpRequest, body: s.SafeInput, run: Callable[[], tuple[int, dict[str, Any]]]
) -> tuple[int, dict[str, Any]]:
    """Run ``run`` once per ``Idempotency-Key``: a repeat gets the first answer, a reuse of the
    key with another body a 422. ``run`` raises ``ApiError`` to refuse; then nothing is kept,
    neither its changes nor the key, and a retry runs again."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        with transaction.atomic():
            return run()
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 200 printable characters.")
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()
    token = request.auth
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(token=token, key=key, fingerprint=fingerprint)
        except IntegrityError:
            # A concurrent first request held the key until it committed; its answer is final.
            record = IdempotentRequest.objects.get(token=token, key=key)
            if record.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request; use a new key.",
                ) from None
            request.api_replayed = True
            return record.status_code, record.response
        status, answer = run()
        record.status_code, record.response = status, json.loads(json.dumps(answer, default=str))
        IdempotentRequest.objects.filter(pk=record.pk).update(status_code=status, response=record.response)
        return status, answer


# --- endpoints ------------------------------------------------------------------------------

JourneyId = Path(..., ge=1, le=MAX_ID)


@api.post("/journeys", response={201: s.JourneyOut, codes_4xx: s.Error}, url_name="journey_start", tags=["journeys"])
def start_journey(request: HttpRequest, payload: s.JourneyIn):
    """Start a journey of a definition the token's user may view; its agent starts at once."""

    def run() -> tuple[int, dict[str, Any]]:
        definition = definitions_for(request.user).filter(key=payload.definition).first()
        if definition is None:
            known = JourneyDefinition.objects.filter(key=payload.definition).exists()
            raise ApiError(
                404 if known else 422,
                "unknown_definition",
                f"No journey definition {payload.definition!r} you may use.",
            )
        agent = getattr(request.user, "agent", None)
        try:
            journey = journey_start(
                definition=definition,
                customer_ref=payload.customer_ref,
                channel=payload.channel,
                message=payload.message,
                request=payload.context,
                # An agent's token starts journeys it runs itself; a channel's or person's token
                # starts them with the default agent.
                agent=agent if agent is not None and agent.is_enabled else None,
            )
        except JourneyError as exc:
            raise ApiError(409, "cannot_start", str(exc)) from None
        request.api_journey = journey
        return 201, journey_out(request, journey)

    return Status(*idempotent(request, payload, run))


@api.get(
    "/journeys/{journey_id}",
    response={200: s.JourneyOut, codes_4xx: s.Error},
    url_name="journey_detail",
    tags=["journeys"],
)
def get_journey(request: HttpRequest, journey_id: int = JourneyId):
    return Status(200, journey_out(request, _journey(request, journey_id)))


@api.get(
    "/journeys/{journey_id}/events",
    response={200: s.EventPage, codes_4xx: s.Error},
    url_name="journey_events",
    tags=["journeys"],
)
def journey_events(request: HttpRequest, journey_id: int = JourneyId, after: int = Query(0, ge=0, le=MAX_ID)):
    """The journey's events after the cursor ``after`` (an event id), oldest first."""
    journey = _journey(request, journey_id)
    rows = list(
        Event.objects.filter(journey=journey, pk__gt=after)
        .select_related("actor_user", "actor_agent")
        .order_by("id")[: EVENT_PAGE + 1]
    )
    page = rows[:EVENT_PAGE]
    return Status(
        200,
        {
            "events": [
                {
                    "id": e.pk,
                    "kind": e.kind,
                    "at": e.at,
                    "actor_kind": e.actor_kind,
                    "actor": e.actor_label,
                    "step": e.step,
                    "summary": e.summary,
                    "data": mask_data(e.data or {}),
                    "proposal": e.proposal_id,
                }
                for e in page
            ],
            "next_after": page[-1].pk if page else after,
            "has_more": len(rows) > EVENT_PAGE,
        },
    )


@api.post(
    "/journeys/{journey_id}/messages",
    response={201: s.MessageOut, codes_4xx: s.Error},
    url_name="journey_message",
    tags=["journeys"],
)
def customer_message(request: HttpRequest, payload: s.MessageIn, journey_id: int = JourneyId):
    """A message from the customer (a channel passing it on). Wakes an agent waiting for it."""

    def run() -> tuple[int, dict[str, Any]]:
        _journey(request, journey_id)
        try:
            journey = journey_customer_message(
                journey_id=journey_id, text=payload.text, data=payload.data or None, intent=payload.intent
            )
        except JourneyError as exc:
            raise ApiError(409, "journey_finished", str(exc)) from None
        event = journey.events.filter(kind=Event.Kind.MESSAGE_IN).order_by("-id").first()
        return 201, {"journey": journey_out(request, journey), "event": event.pk}

    return Status(*idempotent(request, payload, run))


@api.post(
    "/journeys/{journey_id}/proposals",
    response={201: s.ProposalOut, codes_4xx: s.Error},
    url_name="journey_propose",
    tags=["proposals"],
)
def propose(request: HttpRequest, payload: s.ProposalIn, journey_id: int = JourneyId):
    """Propose an action and get the decision at once: `auto_approved` (then `executed` or
    `failed`, with the result), `pending` (with its URL and expiry) or `denied` (with the rule).

    An agent's token proposes as that agent, on journeys it runs; a person's token as the person
    in control (after a takeover in the console). While a person has taken the journey over or
    its agents are paused an agent gets 409 with the reason, and nothing is proposed.
    """

    def run() -> tuple[int, dict[str, Any]]:
        journey = _journey(request, journey_id)
        agent = getattr(request.user, "agent", None)
        # The proposal's own idempotency key (the core bank's "one effect"): scoped by journey
        # and token, derived from the caller's Idempotency-Key when there is one.
        tag = hashlib.sha256((request.headers.get("Idempotency-Key") or uuid.uuid4().hex).encode()).hexdigest()[:32]
        key = f"j{journey.pk}-api{request.auth.pk}-{tag}"
        try:
            with claimed_provenance(agent_version=payload.agent_version, model=payload.model, via="api"):
                if agent is not None:
                    proposal = agent_propose(
                        journey_id=journey.pk,
                        agent=agent,
                        action=payload.action,
                        params=payload.params,
                        explanation=payload.explanation,
                        confidence=payload.confidence,
                        key=key,
                    )
                else:
                    proposal = person_propose(
                        journey_id=journey.pk,
                        user=request.user,
                        action=payload.action,
                        params=payload.params,
                        explanation=payload.explanation,
                        key=f"api{request.auth.pk}-{tag}",
                    )
        except ActionParamsError as exc:
            raise ApiError(422, "invalid_parameters", str(exc)) from None
        except AgentRefused as exc:
            raise ApiError(409, exc.reason, str(exc)) from None
        except NotAllowed as exc:
            raise ApiError(409, "not_in_control", str(exc)) from None
        except ControlError as exc:
            raise ApiError(409, "refused", str(exc)) from None
        proposal = ProposedAction.objects.select_related(
            "action_type", "decided_by", "proposed_by_agent", "proposed_by_user"
        ).get(pk=proposal.pk)
        return 201, proposal_out(proposal)

    return Status(*idempotent(request, payload, run))


@api.get(
    "/proposals/{proposal_id}",
    response={200: s.ProposalOut, codes_4xx: s.Error},
    url_name="proposal_detail",
    tags=["proposals"],
)
def get_proposal(request: HttpRequest, proposal_id: int = Path(..., ge=1, le=MAX_ID)):
    """Poll a proposal: its status, decision, who decided and the execution result."""
    proposal = (
        ProposedAction.objects.select_related("action_type", "decided_by", "proposed_by_agent", "proposed_by_user")
        .filter(pk=proposal_id, journey__in=_visible_journeys(request))
        .first()
    )
    if proposal is None:
        raise Http404("No such proposal.")
    request.api_journey = proposal.journey
    return Status(200, proposal_out(proposal))


def _visible_journeys(request: HttpRequest):
    from journeys.access import journeys_for

    return journeys_for(request.user).values("pk")
