"""The llm agent against a chat-completions stub on 127.0.0.1: tools from the step's actions,
tool calls to proposals, and every kind of bad answer to an exception case and a person."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from journeys import runtime
from journeys.models import Agent, Event, Journey, ProposedAction
from journeys.services import journey_start
from review.models import ExceptionCase

from ..llm_stub import completion, llm_stub, tool_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def stub():
    with llm_stub() as running:
        yield running


@pytest.fixture
def llm_agent(demo, stub) -> Agent:
    agent = Agent.objects.get(name="LLM agent")  # seeded by the demo
    agent.config = {"base_url": stub.url, "model": "stub-model", "timeout_seconds": 0.5, "version": "7"}
    agent.save()
    return agent


def turn(journey: Journey) -> str:
    journey.refresh_from_db()
    return runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token="t")


def start(agent: Agent) -> Journey:
    return journey_start(definition="fee_refund", customer_ref="CUST-00001", agent=agent)


def test_tools_come_from_the_steps_actions_with_their_schemas(stub, llm_agent):
    journey = start(llm_agent)
    stub.answer(completion(tool_call("lookup_account", {"customer": "CUST-00001", "explanation": "Verify first."})))
    turn(journey)
    sent = stub.requests[0]["json"]
    assert stub.requests[0]["path"] == "/v1/chat/completions"
    assert sent["model"] == "stub-model"
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names == ["lookup_account", "finish_step", "wait_for_customer", "hand_to_person"]
    schema = sent["tools"][0]["function"]["parameters"]
    assert schema["properties"]["customer"]["type"] == "string"
    assert set(schema["required"]) == {"customer", "explanation"} and schema["additionalProperties"] is False
    finish = sent["tools"][1]["function"]["parameters"]["properties"]["outcome"]
    assert finish["enum"] == ["not verified", "verified"]


def test_a_tool_call_becomes_a_proposal_that_the_policy_decides_and_the_step_moves_on(stub, llm_agent):
    journey = start(llm_agent)
    stub.answer(completion(tool_call("lookup_account", {"customer": "CUST-00001", "explanation": "Verify first."})))
    assert turn(journey) in ("continued", "executed")
    proposal = ProposedAction.objects.get(journey=journey)
    assert proposal.proposed_by_agent == llm_agent and proposal.explanation == "Verify first."
    assert proposal.status == ProposedAction.Status.EXECUTED
    stub.answer(completion(tool_call("finish_step", {"outcome": "verified"})))
    assert turn(journey) == "advanced"
    journey.refresh_from_db()
    assert journey.current_step == "find_fee"
    # The refund step's tools carry the amount's schema.
    from journeys.agents.llm import action_tool

    amount = action_tool("issue_refund")["function"]["parameters"]["properties"]["amount"]
    assert amount["type"] == "string" and amount["pattern"]


def test_provenance_names_the_model_and_agent_version(stub, llm_agent):
    from review.models import AuditRecord

    journey = start(llm_agent)
    stub.answer(completion(tool_call("lookup_account", {"customer": "CUST-00001", "explanation": "x"})))
    turn(journey)
    decided = AuditRecord.objects.get(journey_id=journey.pk, kind="action_decided")
    provenance = decided.payload["provenance"]
    assert provenance["agent_kind"] == "llm" and provenance["model"] == "stub-model"
    assert provenance["agent_version"] == "7" and provenance["via"] == "runtime"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (
            {"body": completion(tool_call("issue_refund", {"account": "A", "amount": "5.00", "reason": "r"}))},
            "llm_unknown_tool",
        ),
        ({"body": completion(tool_call("transfer_all_money", {}))}, "llm_unknown_tool"),
        (
            {"body": completion(tool_call("lookup_account", {"customer": "CUST-00001", "pin": "1234"}))},
            "llm_invalid_arguments",
        ),
        ({"body": completion(tool_call("lookup_account", "{not json"))}, "llm_invalid_tool_call"),
        ({"body": completion(tool_call("finish_step", {"outcome": "delighted"}))}, "llm_invalid_arguments"),
        ({"body": completion(content="I think the customer is fine.")}, "llm_no_tool_call"),
        ({"raw": b"<html>gateway</html>"}, "llm_bad_answer"),
        ({"body": {"choices": []}}, "llm_bad_answer"),
        ({"body": {"error": "bad model"}, "status": 400}, "llm_bad_answer"),
        ({"body": completion(), "sleep": 1.5}, "llm_timeout"),
    ],
)
def test_bad_answers_become_an_exception_case_and_a_person(stub, llm_agent, answer, kind):
    journey = start(llm_agent)
    stub.answer(**answer)
    assert turn(journey) == "handed-off"
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN
    assert ExceptionCase.objects.filter(journey=journey, kind=kind).exists()
    assert not ProposedAction.objects.filter(journey=journey).exists()


def test_server_errors_are_retried_not_fatal(stub, llm_agent):
    journey = start(llm_agent)
    stub.answer({"error": "overloaded"}, status=503)
    assert turn(journey) == "retry"
    journey.refresh_from_db()
    assert journey.waiting_on == Journey.WaitingOn.RETRY
    assert journey.events.filter(kind=Event.Kind.TURN_RETRY).exists()


def test_without_an_endpoint_the_journey_goes_to_a_person(demo, settings):
    settings.LLM_BASE_URL = ""
    user = get_user_model().objects.create_user("agent-llm-2")
    agent = Agent.objects.create(user=user, name="Unconfigured LLM", kind=Agent.Kind.LLM)
    journey = start(agent)
    assert turn(journey) == "handed-off"
    assert ExceptionCase.objects.filter(journey=journey, kind="llm_not_configured").exists()


def test_simulator_gives_a_share_of_journeys_to_the_llm_agent_only_with_an_endpoint(demo, settings):
    from demo.simulator import Simulator

    llm = Agent.objects.get(name="LLM agent")
    settings.LLM_BASE_URL = ""
    quiet = [Simulator(seed=3).open_journey() for _ in range(10)]
    assert all(j.agent.kind == Agent.Kind.SCRIPTED for j in quiet)
    settings.LLM_BASE_URL, settings.LLM_JOURNEY_SHARE = "http://127.0.0.1:9/v1", 0.5
    sim = Simulator(seed=3)
    agents = [sim.open_journey().agent for _ in range(20)]
    assert llm in agents and any(a.kind == Agent.Kind.SCRIPTED for a in agents)
