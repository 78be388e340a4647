"""Fixtures for the API: an external agent with grants, tokens, a client that sends them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from guardian.shortcuts import assign_perm

from api.tokens import token_create
from journeys.models import Agent, JourneyDefinition


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def external_agent(demo) -> Agent:
    """An agent running elsewhere, granted to see card journeys only (like the Cards team)."""
    user = get_user_model().objects.create_user("agent-external", first_name="External agent")
    user.set_unusable_password()
    user.save()
    agent = Agent.objects.create(user=user, name="External agent", kind=Agent.Kind.EXTERNAL, group="external")
    for definition in JourneyDefinition.objects.filter(key__in=["card_dispute", "lost_card", "fee_refund"]):
        assign_perm("journeys.view_journeys", user, definition)
    return agent


def make_token(user, admin, **kwargs: Any) -> str:
    _, raw = token_create(user=user, name=kwargs.pop("name", f"test token for {user}"), created_by=admin, **kwargs)
    return raw


@pytest.fixture
def agent_token(external_agent, admin_user) -> str:
    return make_token(external_agent.user, admin_user)


@pytest.fixture
def supervisor2_token(supervisor2, admin_user) -> str:
    return make_token(supervisor2, admin_user)


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}
