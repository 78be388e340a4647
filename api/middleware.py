"""Every authenticated API call goes to the audit trail, on its token's own hash chain."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from review.audit.chain import audit_append
from review.models import AuditRecord

from .models import ApiToken


class ApiCallAudit:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        token = getattr(request, "auth", None)
        if isinstance(token, ApiToken) and request.path.startswith("/api/"):
            api_call_audit(request, response, token)
        return response


def _clean(text: str, limit: int) -> str:
    """Text the database can store: no NUL, no lone surrogates (a hostile path may carry both)."""
    return text[:limit].replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def api_call_audit(request: HttpRequest, response: HttpResponse, token: ApiToken) -> None:
    user = token.user
    agent = getattr(user, "agent", None)
    journey = getattr(request, "api_journey", None)
    replayed = bool(getattr(request, "api_replayed", False))
    actor = (
        {"actor_kind": AuditRecord.Actor.AGENT, "actor_label": agent.name, "actor_agent_id": agent.pk}
        if agent is not None
        else {"actor_kind": AuditRecord.Actor.PERSON, "actor_label": user.get_username(), "actor_user_id": user.pk}
    )
    audit_append(
        chain=token.audit_chain,
        kind="api_call",
        summary=f"{request.method} {_clean(request.path, 200)} → {response.status_code}"
        + (" (idempotent repeat)" if replayed else ""),
        journey_id=journey.pk if journey is not None else None,
        definition_id=journey.definition_id if journey is not None else None,
        customer_ref=journey.customer_ref if journey is not None else "",
        decision=str(response.status_code),
        payload={
            "token": token.pk,
            "token_prefix": token.prefix,
            "method": request.method,
            "path": _clean(request.path, 500),
            "query": _clean(request.META.get("QUERY_STRING", ""), 500),
            "status": response.status_code,
            "idempotency_key": _clean(request.headers.get("Idempotency-Key") or "", 200),
            "replayed": replayed,
        },
        **actor,
    )
