"""examples/external_agent.py runs against a live server and a real worker, end to end: it
starts a journey, proposes, waits while a supervisor approves in the console, and carries on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from guardian.shortcuts import assign_perm

from api.tokens import token_create
from journeys.models import Agent, JourneyDefinition, ProposedAction
from review.services import proposal_approve

from ..conftest import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_agent.py"


@pytest.mark.worker
def test_example_external_agent_runs_against_a_live_server(live_server, celery_worker):
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", customers=12, stdout=quiet)
    User = get_user_model()
    admin, supervisor2 = User.objects.get(username="admin"), User.objects.get(username="supervisor2")
    agent_user = User.objects.create_user("agent-partner")
    Agent.objects.create(user=agent_user, name="Partner agent", kind=Agent.Kind.EXTERNAL, group="partner")
    assign_perm("journeys.view_journeys", agent_user, JourneyDefinition.objects.get(key="fee_refund"))
    _, token = token_create(user=agent_user, name="example", created_by=admin)

    env = {**os.environ, "HANDOFF_URL": live_server.url, "HANDOFF_TOKEN": token, "DECISION_TIMEOUT": "60"}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        pending = wait_for(
            lambda: ProposedAction.objects.filter(
                action_type__key="issue_refund", status=ProposedAction.Status.PENDING
            ).first(),
            timeout=60,
            message="the example's refund waiting for approval",
        )
        proposal_approve(proposal_id=pending.pk, user=supervisor2, reason="Salary was pending; fair.")
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "issue_refund: pending" in output
    assert "decided: executed by supervisor2" in output
    assert "send_message: executed" in output
    assert output.strip().endswith("RESULT executed")
    refund = ProposedAction.objects.get(pk=pending.pk)
    assert refund.proposed_by_agent.name == "Partner agent" and refund.status == ProposedAction.Status.EXECUTED
