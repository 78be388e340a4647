"""The JSON API by hand: auth, grants, the propose path, idempotency, rate limits, bad input."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from api.models import ApiToken, IdempotentRequest
from api.tokens import token_revoke
from journeys.control import agents_pause, journey_take_over
from journeys.models import Event, Journey, JourneyDefinition, ProposedAction
from journeys.services import journey_start
from review.models import AuditRecord

from .conftest import auth, make_token

pytestmark = pytest.mark.django_db


def post(client, url: str, body, token: str, **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", headers=auth(token, **headers))


def start_body(**over):
    body = {"definition": "fee_refund", "customer_ref": "CUST-00001", "channel": "app", "context": {"fee": "overdraft"}}
    body.update(over)
    return body


def refund_body(amount: str = "20.00", **over):
    body = {
        "action": "issue_refund",
        "params": {"account": "ACC-000001", "amount": amount, "reason": "fee reversal", "customer": "CUST-00001"},
        "explanation": "The overdraft fee was charged in error.",
        "confidence": 0.9,
        "agent_version": "2.3.1",
        "model": "house-model-7",
    }
    body.update(over)
    return body


def api_journey(client, token) -> int:
    r = post(client, "/api/v1/journeys", start_body(), token)
    assert r.status_code == 201, r.content
    return r.json()["id"]


def test_no_token_or_a_forged_one_is_401_json(client, agent_token):
    assert client.get("/api/v1/journeys/1").status_code == 401
    r = client.get("/api/v1/journeys/1", headers=auth("hnd_deadbeef_forged"))
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert r["WWW-Authenticate"] == "Bearer"


def test_tokens_are_stored_hashed_and_revocation_is_immediate(client, agent_token, admin_user):
    token = ApiToken.objects.get()
    assert agent_token not in (token.digest, token.prefix) and len(token.digest) == 64
    journey_id = api_journey(client, agent_token)
    token.refresh_from_db()
    assert token.last_used_at is not None
    token_revoke(token_id=token.pk, revoked_by=admin_user)
    assert client.get(f"/api/v1/journeys/{journey_id}", headers=auth(agent_token)).status_code == 401


def test_agent_starts_journey_it_runs_and_reads_its_events_with_a_cursor(client, agent_token, external_agent):
    r = post(client, "/api/v1/journeys", start_body(message="I was charged twice"), agent_token)
    assert r.status_code == 201
    body = r.json()
    journey = Journey.objects.get(pk=body["id"])
    assert journey.agent == external_agent and journey.channel == "app"
    assert journey.context["request"] == {"fee": "overdraft"}
    first = client.get(body["events_url"], headers=auth(agent_token)).json()
    kinds = [e["kind"] for e in first["events"]]
    assert kinds[:3] == ["journey_started", "message_in", "step_started"]
    again = client.get(f"{body['events_url']}?after={first['next_after']}", headers=auth(agent_token)).json()
    assert again["events"] == [] and again["next_after"] == first["next_after"]


def test_another_teams_journey_is_a_404_as_on_the_pages(client, agent_token, supervisor2_token):
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00002")
    for url in (f"/api/v1/journeys/{journey.pk}", f"/api/v1/journeys/{journey.pk}/events"):
        r = client.get(url, headers=auth(supervisor2_token))
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = post(client, f"/api/v1/journeys/{journey.pk}/messages", {"text": "hello"}, supervisor2_token)
    assert r.status_code == 404
    assert not journey.events.filter(kind=Event.Kind.MESSAGE_IN).exists()
    # The agent holds view on card disputes: it sees it.
    assert client.get(f"/api/v1/journeys/{journey.pk}", headers=auth(agent_token)).status_code == 200


def test_unknown_or_forbidden_definition_is_named_and_nothing_is_started(client, agent_token):
    before = Journey.objects.count()
    r = post(client, "/api/v1/journeys", start_body(definition="mortgage"), agent_token)
    assert r.status_code == 422 and "mortgage" in r.json()["message"]
    r = post(client, "/api/v1/journeys", start_body(definition="address_change"), agent_token)  # not granted
    assert r.status_code == 404 and r.json()["error"] == "unknown_definition"
    assert Journey.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ref": "CUST-00001"}, "definition"),
        ({"definition": "fee_refund"}, "customer_ref"),
        (start_body(channel="pigeon"), "channel"),
        (start_body(customer_ref="x" * 41), "customer_ref"),
        (start_body(context="not an object"), "context"),
        (start_body(message="nul\x00byte"), "NUL"),
        (start_body(context={"k": "\ud800"}), "surrogate"),
    ],
)
def test_bad_start_input_is_a_422_naming_the_problem(client, agent_token, body, field):
    before = Journey.objects.count()
    r = post(client, "/api/v1/journeys", body, agent_token)
    assert r.status_code == 422, r.content
    assert field in json.dumps(r.json())
    assert Journey.objects.count() == before


def test_malformed_and_oversized_bodies_are_4xx_json(client, agent_token, settings):
    r = post(client, "/api/v1/journeys", "{not json", agent_token)
    assert r.status_code in (400, 422) and r["Content-Type"].startswith("application/json")
    settings.API_MAX_BODY_BYTES = 1000
    r = post(client, "/api/v1/journeys", start_body(message="x" * 1500), agent_token)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"


def test_hostile_ids_are_4xx_not_500(client, agent_token):
    for url in (
        "/api/v1/journeys/0",
        f"/api/v1/journeys/{2**64}",
        "/api/v1/journeys/-1/events",
        "/api/v1/journeys/1/events?after=-5",
        "/api/v1/proposals/99999999999999999999",
    ):
        r = client.get(url, headers=auth(agent_token))
        assert 400 <= r.status_code < 500, (url, r.status_code)


def test_small_refund_is_auto_approved_and_executed_with_provenance(client, agent_token, external_agent):
    journey_id = api_journey(client, agent_token)
    r = post(client, f"/api/v1/journeys/{journey_id}/proposals", refund_body("20.00"), agent_token)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "executed"
    assert body["decision"]["effect"] == "allow" and "35.00" in body["decision"]["rule"]
    assert body["result"]["refunded"] == "20.00"
    decided = AuditRecord.objects.get(proposal_id=body["id"], kind="action_decided")
    provenance = decided.payload["provenance"]
    assert provenance["agent"] == "External agent" and provenance["agent_version"] == "2.3.1"
    assert provenance["model"] == "house-model-7" and provenance["via"] == "api"
    assert provenance["rules_version"] == 0  # the installed rules, never changed since


def test_provenance_names_the_rules_version_after_a_scope_change(client, agent_token, admin_user):
    from review.models import PermissionScope
    from review.services.scopes import scope_set_enabled

    unrelated = PermissionScope.objects.get(name="Replacement cards are allowed")
    scope_set_enabled(scope_id=unrelated.pk, enabled=False, actor=admin_user, reason="test")
    journey_id = api_journey(client, agent_token)
    body = post(client, f"/api/v1/journeys/{journey_id}/proposals", refund_body("20.00"), agent_token).json()
    decided = AuditRecord.objects.get(proposal_id=body["id"], kind="action_decided")
    assert decided.payload["provenance"]["rules_version"] >= 1
    page = client_for(admin_user).get(f"/audit/journeys/{journey_id}/")
    assert b"scope rules version" in page.content and b"house-model-7" in page.content


def client_for(user):
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


def test_larger_refund_is_pending_with_url_and_expiry_and_can_be_polled(client, agent_token):
    journey_id = api_journey(client, agent_token)
    r = post(client, f"/api/v1/journeys/{journey_id}/proposals", refund_body("120.00"), agent_token)
    body = r.json()
    assert body["status"] == "pending" and body["expires_at"]
    assert body["url"] == f"/api/v1/proposals/{body['id']}"
    assert Journey.objects.get(pk=journey_id).status == Journey.Status.WAITING_APPROVAL
    polled = client.get(body["url"], headers=auth(agent_token)).json()
    assert polled["status"] == "pending" and polled["decision"]["required_approvals"] == 1


def test_denied_refund_names_the_rule_and_goes_to_a_person(client, agent_token):
    journey_id = api_journey(client, agent_token)
    r = post(client, f"/api/v1/journeys/{journey_id}/proposals", refund_body("6000.00"), agent_token)
    body = r.json()
    assert body["status"] == "denied" and "5,000.00" in body["decision"]["rule"]
    assert body["decision"]["explanation"]
    assert Journey.objects.get(pk=journey_id).status == Journey.Status.HUMAN


def test_bad_parameters_are_422_and_nothing_is_proposed(client, agent_token):
    journey_id = api_journey(client, agent_token)
    for body in (
        refund_body("lots"),
        refund_body(action="launch_rocket"),
        refund_body(params={"amount": "1.00"}),
        refund_body(confidence=7),
        {"action": "issue_refund"},
    ):
        r = post(client, f"/api/v1/journeys/{journey_id}/proposals", body, agent_token)
        assert r.status_code == 422, (body, r.content)
        assert r.json()["message"]
    assert not ProposedAction.objects.filter(journey_id=journey_id).exists()


def test_taken_over_journey_refuses_agent_with_409_and_proposes_nothing(client, agent_token, supervisor):
    journey_id = api_journey(client, agent_token)
    # The supervisor's team may take over fee refunds? No: cards. Use a card dispute instead.
    journey = journey_start(
        definition="card_dispute", customer_ref="CUST-00001", agent=Journey.objects.get(pk=journey_id).agent
    )
    journey_take_over(journey_id=journey.pk, user=supervisor)
    r = post(client, f"/api/v1/journeys/{journey.pk}/proposals", refund_body(), agent_token)
    assert r.status_code == 409 and r.json()["error"] == "taken_over"
    assert "supervisor" in r.json()["message"]
    assert not ProposedAction.objects.filter(journey=journey).exists()


def test_paused_agents_refuse_with_409_and_propose_nothing(client, agent_token, admin_user):
    journey_id = api_journey(client, agent_token)
    agents_pause(user=admin_user, definition=JourneyDefinition.objects.get(key="fee_refund"), reason="incident")
    r = post(client, f"/api/v1/journeys/{journey_id}/proposals", refund_body(), agent_token)
    assert r.status_code == 409 and r.json()["error"] == "paused"
    assert not ProposedAction.objects.filter(journey_id=journey_id).exists()
    assert client.get(f"/api/v1/journeys/{journey_id}", headers=auth(agent_token)).json()["agents_paused"] is True


def test_agent_cannot_propose_on_a_journey_another_agent_runs(client, agent_token):
    journey = journey_start(definition="fee_refund", customer_ref="CUST-00001")  # the scripted agent's
    r = post(client, f"/api/v1/journeys/{journey.pk}/proposals", refund_body(), agent_token)
    assert r.status_code == 409 and r.json()["error"] == "not_your_journey"


def test_person_token_proposes_only_as_the_person_in_control(client, supervisor, admin_user):
    token = make_token(supervisor, admin_user)
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001")
    body = {"action": "send_message", "params": {"customer": "CUST-00001", "text": "Hi"}, "explanation": "Greeting"}
    r = post(client, f"/api/v1/journeys/{journey.pk}/proposals", body, token)
    assert r.status_code == 409 and r.json()["error"] == "not_in_control"
    journey_take_over(journey_id=journey.pk, user=supervisor)
    r = post(client, f"/api/v1/journeys/{journey.pk}/proposals", body, token)
    assert r.status_code == 201 and r.json()["proposed_by"] == "supervisor"


def test_customer_message_wakes_and_is_recorded(client, agent_token):
    journey_id = api_journey(client, agent_token)
    r = post(client, f"/api/v1/journeys/{journey_id}/messages", {"text": "It was the 3rd of May"}, agent_token)
    assert r.status_code == 201
    assert Event.objects.get(pk=r.json()["event"]).summary == "It was the 3rd of May"


def test_idempotency_key_repeat_returns_first_answer_and_creates_nothing(client, agent_token):
    r1 = post(client, "/api/v1/journeys", start_body(), agent_token, **{"Idempotency-Key": "start-1"})
    r2 = post(client, "/api/v1/journeys", start_body(), agent_token, **{"Idempotency-Key": "start-1"})
    assert r1.status_code == r2.status_code == 201 and r1.json()["id"] == r2.json()["id"]
    assert Journey.objects.count() == 1
    journey_id = r1.json()["id"]
    url = f"/api/v1/journeys/{journey_id}/proposals"
    p1 = post(client, url, refund_body(), agent_token, **{"Idempotency-Key": "refund-1"})
    p2 = post(client, url, refund_body(), agent_token, **{"Idempotency-Key": "refund-1"})
    assert p1.json()["id"] == p2.json()["id"]
    assert ProposedAction.objects.filter(journey_id=journey_id).count() == 1


def test_same_idempotency_key_with_another_body_is_422(client, agent_token):
    post(client, "/api/v1/journeys", start_body(), agent_token, **{"Idempotency-Key": "k"})
    r = post(client, "/api/v1/journeys", start_body(customer_ref="CUST-00002"), agent_token, **{"Idempotency-Key": "k"})
    assert r.status_code == 422 and r.json()["error"] == "idempotency_key_reused"
    assert Journey.objects.count() == 1


def test_refused_request_keeps_no_key_so_a_fixed_retry_runs(client, agent_token):
    r = post(client, "/api/v1/journeys", start_body(definition="nope"), agent_token, **{"Idempotency-Key": "k2"})
    assert r.status_code == 422
    assert not IdempotentRequest.objects.exists()


def test_rate_limit_per_token_answers_429_with_retry_after(client, external_agent, admin_user, supervisor2):
    slow = make_token(external_agent.user, admin_user, rate_per_minute=3)
    other = make_token(supervisor2, admin_user, rate_per_minute=3)
    codes = [client.get("/api/v1/journeys/1", headers=auth(slow)).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    r = client.get("/api/v1/journeys/1", headers=auth(slow))
    assert r.status_code == 429 and 1 <= int(r["Retry-After"]) <= 60 and r.json()["error"] == "rate_limited"
    assert client.get("/api/v1/journeys/1", headers=auth(other)).status_code == 404  # its own budget


def test_every_call_is_audited_on_the_tokens_chain(client, agent_token):
    journey_id = api_journey(client, agent_token)
    client.get(f"/api/v1/journeys/{journey_id}", headers=auth(agent_token))
    client.get("/api/v1/journeys/999999", headers=auth(agent_token))
    token = ApiToken.objects.get()
    calls = list(AuditRecord.objects.filter(kind="api_call").order_by("id"))
    assert [c.chain for c in calls] == [token.audit_chain] * 3
    assert [c.summary for c in calls] == [
        "POST /api/v1/journeys → 201",
        f"GET /api/v1/journeys/{journey_id} → 200",
        "GET /api/v1/journeys/999999 → 404",
    ]
    assert calls[0].actor_label == "External agent" and calls[0].journey_id == journey_id
    assert calls[1].payload["token_prefix"] == token.prefix
    from review.audit.verify import audit_verify

    assert audit_verify().ok  # the token's chain verifies like every other


def test_schema_is_valid_openapi_3(client):
    from openapi_spec_validator import validate

    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/journeys", "/api/v1/journeys/{journey_id}/proposals", "/api/v1/proposals/{proposal_id}"} <= set(
        schema["paths"]
    )


def test_docs_page_is_served_with_local_assets(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    assert b"swagger-ui-bundle.js" in r.content and b"cdn" not in r.content.lower()


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_key_make_one_journey(demo, external_agent, admin_user):
    import threading

    from django.db import connection
    from django.test import Client

    token = make_token(external_agent.user, admin_user)
    answers: list[int] = []
    barrier = threading.Barrier(4)

    def call() -> None:
        try:
            barrier.wait()
            r = post(Client(), "/api/v1/journeys", start_body(), token, **{"Idempotency-Key": "race"})
            answers.append(r.json()["id"])
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and len(set(answers)) == 1
    assert Journey.objects.count() == 1
    with transaction.atomic():
        assert IdempotentRequest.objects.count() == 1


def _race_takeover(barrier, journey_id: int, user) -> None:
    from django.db import connection

    try:
        barrier.wait()
        journey_take_over(journey_id=journey_id, user=user)
    finally:
        connection.close()


def _race_propose(barrier, journey_id: int, customer: str, token: str, answer: dict[str, int]) -> None:
    from django.db import connection
    from django.test import Client

    try:
        barrier.wait()
        body = {"action": "send_message", "params": {"customer": customer, "text": "Hello"}, "explanation": "Hi."}
        answer["status"] = post(Client(), f"/api/v1/journeys/{journey_id}/proposals", body, token).status_code
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_takeover_racing_an_agent_proposal_never_lets_a_proposal_land_after_it(demo, admin_user):
    """Repeatedly: a supervisor takes over while the external agent proposes. Either the proposal
    came first (and is on record before the takeover) or the agent got 409 — never after."""
    import threading

    from django.contrib.auth import get_user_model

    from journeys.models import Agent

    agent = Agent.objects.get(name="External agent")
    supervisor = get_user_model().objects.get(username="supervisor")
    token = make_token(agent.user, admin_user, rate_per_minute=1000)
    outcomes = []
    for n in range(1, 7):
        customer = f"CUST-0000{n}"
        journey = journey_start(definition="card_dispute", customer_ref=customer, agent=agent)
        barrier = threading.Barrier(2)
        answer: dict[str, int] = {}
        threads = [
            threading.Thread(target=_race_takeover, args=(barrier, journey.pk, supervisor)),
            threading.Thread(target=_race_propose, args=(barrier, journey.pk, customer, token, answer)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        takeover = Event.objects.get(journey=journey, kind=Event.Kind.TAKEOVER)
        proposed = Event.objects.filter(journey=journey, kind=Event.Kind.ACTION_PROPOSED)
        if answer["status"] == 409:
            assert not proposed.exists()
        else:
            assert answer["status"] == 201 and proposed.get().pk < takeover.pk
        outcomes.append(answer["status"])
    assert set(outcomes) <= {201, 409}
