"""The stop button fences like a takeover, at every grain, with a real worker.

Once ``agents_pause`` returns, no core-bank effect an agent started may land: a turn that is
carrying out an effect when the pause is called either lands before the pause is confirmed or
not at all. The core bank is made slow (each effect call takes 0.4 s, the effect itself is real)
so the pause reliably arrives while a turn is inside its effect.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import transaction

from demo.corebank import SimulatedCoreBank
from demo.models import CoreEffect
from journeys.control import ControlError, NotAllowed, agents_pause, agents_resume
from journeys.models import ActionType, Agent, AgentPause, Event, Journey, JourneyDefinition, ProposedAction
from journeys.services import journey_start
from review.models import AuditRecord
from review.services import proposal_approve

from ..conftest import drive_to_end, wait_for

SLOW_EFFECT_SECONDS = 0.4


@pytest.fixture
def slow_core_bank(monkeypatch):
    """Every effect call takes a while and says when one is under way."""
    under_way = threading.Event()
    original = SimulatedCoreBank._once

    def slow_once(self, key, action, params, effect):
        under_way.set()
        time.sleep(SLOW_EFFECT_SECONDS)
        return original(self, key, action, params, effect)

    monkeypatch.setattr(SimulatedCoreBank, "_once", slow_once)
    return under_way


def _lost_cards(n: int) -> list[Journey]:
    return [
        journey_start(definition="lost_card", customer_ref=f"CUST-{i:05d}", request={"reason": "lost"})
        for i in range(1, n + 1)
    ]


def _pause(grain: str, admin, agent) -> AgentPause:
    target = {
        "all": {},
        "definition": {"definition": JourneyDefinition.objects.get(key="lost_card")},
        "agent": {"agent": agent},
        "action": {"action_type": ActionType.objects.get(key="block_card")},
    }[grain]
    return agents_pause(user=admin, reason=f"race drill ({grain})", **target)


@pytest.mark.worker
@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize("grain", ["definition", "agent", "all"])
def test_no_core_bank_effect_lands_after_the_pause_is_confirmed(
    celery_worker, agent, admin_user, slow_core_bank, grain, attempt
):
    journeys = _lost_cards(3)
    assert slow_core_bank.wait(timeout=30), "no agent turn reached the core bank"
    pause = _pause(grain, admin_user, agent)
    # The admin sees "paused" now: from here on the core bank must not change.
    effects_at_confirmation = CoreEffect.objects.count()
    time.sleep(3 * SLOW_EFFECT_SECONDS + 0.5)  # every turn that was anywhere has come back by now
    assert CoreEffect.objects.count() == effects_at_confirmation
    assert not Journey.objects.filter(pk__in=[j.pk for j in journeys], status=Journey.Status.COMPLETED).exists()

    agents_resume(user=admin_user, reason="drill over", **_grain_kwargs(pause))
    for journey in journeys:
        assert drive_to_end(journey.pk).status == Journey.Status.COMPLETED


def _grain_kwargs(pause: AgentPause) -> dict:
    if pause.definition_id:
        return {"definition": pause.definition}
    if pause.agent_id:
        return {"agent": pause.agent}
    if pause.action_type_id:
        return {"action_type": pause.action_type}
    return {}


@pytest.mark.worker
@pytest.mark.parametrize("attempt", range(3))
def test_pausing_an_action_type_holds_its_proposals_for_a_person_from_the_confirmation_on(
    celery_worker, agent, admin_user, supervisor, slow_core_bank, attempt
):
    journeys = _lost_cards(3)
    assert slow_core_bank.wait(timeout=30), "no agent turn reached the core bank"
    block_card = ActionType.objects.get(key="block_card")
    pause = _pause("action", admin_user, agent)
    blocks_at_confirmation = CoreEffect.objects.filter(action="block_card").count()
    # Every journey whose card was not blocked before the confirmation now waits for a person.
    wait_for(
        lambda: all(
            (
                ProposedAction.objects.filter(journey=j, action_type=block_card).exists()
                and Journey.objects.get(pk=j.pk).status != Journey.Status.RUNNING
            )
            or ProposedAction.objects.filter(
                journey=j, action_type=block_card, status=ProposedAction.Status.EXECUTED
            ).exists()
            for j in journeys
        ),
        timeout=30,
        message="a block_card proposal neither ran before the pause nor waited for a person",
    )
    time.sleep(3 * SLOW_EFFECT_SECONDS)
    assert CoreEffect.objects.filter(action="block_card").count() == blocks_at_confirmation
    held = list(ProposedAction.objects.filter(action_type=block_card, status=ProposedAction.Status.PENDING))
    for proposal in held:
        assert proposal.decision_rule == "stop button: Block card paused"
        assert proposal.created_at > pause.paused_at
    # A person's approval is a person's decision: it goes through while the type stays paused.
    for proposal in held:
        proposal_approve(proposal_id=proposal.pk, user=supervisor, reason="checked by hand")
    for journey in journeys:
        assert drive_to_end(journey.pk).status == Journey.Status.COMPLETED
    assert AgentPause.objects.get(pk=pause.pk).is_active


@pytest.mark.worker
def test_an_agent_pause_stops_that_agent_only(celery_worker, agent, admin_user):
    from django.contrib.auth.models import User

    other = Agent.objects.create(
        user=User.objects.create_user("agent-other"), name="Other agent", kind=Agent.Kind.SCRIPTED, config={}
    )
    agents_pause(user=admin_user, agent=agent, reason="misbehaving")
    stopped = journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"}, agent=agent)
    running = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"}, agent=other)
    assert drive_to_end(running.pk).status == Journey.Status.COMPLETED
    assert Journey.objects.get(pk=stopped.pk).turn_seq == 0
    assert not stopped.proposals.exists()
    agents_resume(user=admin_user, agent=agent, reason="fixed")
    assert drive_to_end(stopped.pk).status == Journey.Status.COMPLETED


def test_pauses_at_every_grain_are_audited_with_who_and_why(db, demo, admin_user, agent):
    block_card = ActionType.objects.get(key="block_card")
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    for kwargs, subject in [
        ({"agent": agent}, f"agent {agent.name}"),
        ({"action_type": block_card}, "agents' Block card proposals"),
        ({"definition": lost_card}, f"agents on {lost_card.name}"),
        ({}, "all agents"),
    ]:
        with transaction.atomic():
            agents_pause(user=admin_user, reason=f"why: {subject}", **kwargs)
        record = AuditRecord.objects.filter(kind="pause").order_by("-pk").first()
        assert record.actor_label == admin_user.username
        assert record.payload["subject"] == subject
        assert record.payload["reason"] == f"why: {subject}"
        with pytest.raises(ControlError, match="already paused"):
            agents_pause(user=admin_user, reason="again", **kwargs)


def test_only_someone_who_may_pause_everything_pauses_an_agent_or_an_action_type(db, demo, supervisor, agent):
    from guardian.shortcuts import assign_perm

    assign_perm("journeys.pause_agents", supervisor, JourneyDefinition.objects.get(key="lost_card"))
    with pytest.raises(NotAllowed):
        agents_pause(user=supervisor, agent=agent, reason="x")
    with pytest.raises(NotAllowed):
        agents_pause(user=supervisor, action_type=ActionType.objects.get(key="block_card"), reason="x")
    with pytest.raises(ControlError, match="one thing at a time"):
        agents_pause(
            user=supervisor, definition=JourneyDefinition.objects.get(key="lost_card"), agent=agent, reason="x"
        )
    assert not AgentPause.objects.exists()


def test_the_board_and_the_journey_page_show_every_grain(client, db, demo, admin_user, supervisor, agent):
    journey = journey_start(definition="lost_card", customer_ref="CUST-00003", request={"reason": "lost"})
    agents_pause(user=admin_user, agent=agent, reason="agent incident")
    agents_pause(user=admin_user, action_type=ActionType.objects.get(key="issue_refund"), reason="stop all refunds now")
    client.force_login(supervisor)
    board = client.get("/board/").content.decode()
    assert "agent incident" in board and f"agent {agent.name}" in board
    assert "stop all refunds now" in board and "wait for a person" in board
    page = client.get(f"/journeys/{journey.pk}/").content.decode()
    assert "agent incident" in page
    assert "stop all refunds now" in page
    assert Event.objects.filter(journey=journey).exists()


def test_the_stop_button_page_pauses_an_agent_and_an_action_type_and_refuses_forged_scopes(
    client, db, demo, admin_user, supervisor, agent
):
    from guardian.shortcuts import assign_perm

    client.force_login(admin_user)
    page = client.get("/agents/pause/").content.decode()
    assert f'value="agent:{agent.pk}"' in page and 'value="action:issue_refund"' in page
    response = client.post("/agents/pause/", {"scope": "action:issue_refund", "op": "pause", "reason": "stop refunds"})
    assert response.status_code == 302
    response = client.post("/agents/pause/", {"scope": f"agent:{agent.pk}", "op": "pause", "reason": "agent incident"})
    assert response.status_code == 302
    assert AgentPause.objects.active().filter(action_type__key="issue_refund").exists()
    assert AgentPause.objects.active().filter(agent=agent).exists()
    for forged in ("agent:999999", "agent:abc", "action:no_such_action", "agent:" + "9" * 40):
        assert client.post("/agents/pause/", {"scope": forged, "op": "pause", "reason": "x"}).status_code == 400
    # Someone who may pause one definition sees no agent or action-type rows and is refused them.
    assign_perm("journeys.pause_agents", supervisor, JourneyDefinition.objects.get(key="lost_card"))
    client.force_login(supervisor)
    page = client.get("/agents/pause/").content.decode()
    assert "agent:" not in page and "action:" not in page
    response = client.post("/agents/pause/", {"scope": "action:block_card", "op": "pause", "reason": "x"})
    assert response.status_code == 403
    response = client.post("/agents/pause/", {"scope": f"agent:{agent.pk}", "op": "resume", "reason": "x"})
    assert response.status_code == 403
    assert AgentPause.objects.active().filter(agent=agent).exists()
