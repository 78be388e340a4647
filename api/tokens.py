"""Bearer tokens: create (shown once), authenticate (by hash), revoke. Changes are audited."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from journeys.events import governance_changed

from .models import ApiToken

TOKEN_PREFIX = "hnd_"


class TokenError(ValueError):
    """A token request that cannot be done; the message is for people."""


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _holder(user: Any) -> str:
    agent = getattr(user, "agent", None)
    return f"agent {agent.name}" if agent is not None else f"person {user.get_username()}"


@transaction.atomic
def token_create(*, user: Any, name: str, created_by: Any, rate_per_minute: int | None = None) -> tuple[ApiToken, str]:
    """Issue a token acting as ``user``. Returns the row and the token itself, which is never
    stored and cannot be shown again."""
    if not user.is_active:
        raise TokenError(f"{user.get_username()} is inactive; an inactive user cannot hold a token.")
    if getattr(user, "agent", None) is None and created_by.pk != user.pk:
        # Whoever holds a person's token acts as that person: an admin holding a supervisor's
        # token could propose as the supervisor and approve the proposal as themselves.
        raise TokenError(
            f"A person's token is issued only by that person: {user.get_username()} must issue it "
            "themselves. Issue tokens for agents' service users here."
        )
    name = name.strip()
    if not name:
        raise TokenError("Name the token (e.g. which service uses it).")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        name=name[:120],
        user=user,
        prefix=prefix,
        digest=token_digest(raw),
        rate_per_minute=rate_per_minute or settings.API_RATE_PER_MINUTE,
        created_by=created_by,
    )
    governance_changed.send(
        sender=ApiToken,
        kind="api_token_created",
        actor=created_by,
        subject=f"API token {token.prefix}… “{token.name}” for {_holder(user)}",
        before=None,
        after={"token": token.pk, "prefix": token.prefix, "user": user.get_username(), "rate": token.rate_per_minute},
        reason="",
        data={"token": token.pk},
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token_id: int, revoked_by: Any) -> ApiToken:
    """Revoke at once: the next call with it is refused. Revoking twice is an error."""
    now = timezone.now()
    if not ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=now, revoked_by=revoked_by):
        raise TokenError("That token is already revoked.")
    token = ApiToken.objects.select_related("user").get(pk=token_id)
    governance_changed.send(
        sender=ApiToken,
        kind="api_token_revoked",
        actor=revoked_by,
        subject=f"API token {token.prefix}… “{token.name}” of {_holder(token.user)}",
        before={"revoked": False},
        after={"revoked": True},
        reason="",
        data={"token": token.pk},
    )
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The live token for ``raw`` (not revoked, its user active), stamping its last use."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.active().select_related("user").filter(digest=token_digest(raw)).first()
    if token is None:
        return None
    now = timezone.now()
    # One cheap UPDATE a minute at most: "last used" does not need to be exact to the second.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
