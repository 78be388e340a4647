"""Schemathesis against the served schema: generated calls never get a 500 or an answer that
breaks the schema, with a live token (so requests reach the endpoints, not only the 401)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from console.wsgi import application

# A body the schema allows can still break a business rule: a definition that does not exist
# (404/422), parameters that do not fit the action's own schema (422), a journey that is not
# the agent's to act on (409). Those answers are by design, so "valid data accepted" allows them.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=CONFIG)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """As Django's test client does: the test's transaction must outlive each WSGI request."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(external_agent, admin_user) -> str:
    from .conftest import make_token

    return make_token(external_agent.user, admin_user, rate_per_minute=100000)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_calls_meet_the_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
