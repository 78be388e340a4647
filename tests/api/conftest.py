"""Fixtures for the API: an external agent with grants, tokens, a client that sends them."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from guardian.shortcuts import remove_perm

from api.tokens import token_create
from journeys.models import Agent, JourneyDefinition


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def external_agent(demo) -> Agent:
    """The demo's agent running elsewhere, here granted card journeys and fee refunds only."""
    agent = Agent.objects.get(name="External agent")
    remove_perm("journeys.view_journeys", agent.user, JourneyDefinition.objects.get(key="address_change"))
    return agent


def make_token(user, admin, **kwargs: Any) -> str:
    """A token acting as ``user``: issued by ``admin`` for an agent, by the person for a person."""
    issuer = admin if hasattr(user, "agent") else user
    _, raw = token_create(user=user, name=kwargs.pop("name", f"test token for {user}"), created_by=issuer, **kwargs)
    return raw


@pytest.fixture
def agent_token(external_agent, admin_user) -> str:
    return make_token(external_agent.user, admin_user)


@pytest.fixture
def supervisor2_token(supervisor2, admin_user) -> str:
    return make_token(supervisor2, admin_user)


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}
