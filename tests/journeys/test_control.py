"""Takeover, hand-back, acting in control, and the stop button, tested on the services."""

from __future__ import annotations

import pytest
from django.db import transaction

from journeys import events, runtime
from journeys.agents import Turn
from journeys.agents.base import Proposal
from journeys.control import (
    AlreadyControlled,
    ControlError,
    NotAllowed,
    agents_pause,
    agents_resume,
    journey_force_hand_back,
    journey_hand_back,
    journey_take_over,
    person_propose,
    person_send_message,
    proposal_withdraw,
)
from journeys.models import AgentPause, Event, Journey, JourneyDefinition, ProposedAction
from journeys.services import journey_start, lock_journey, proposal_create


def _journey(definition: str = "lost_card") -> Journey:
    return journey_start(definition=definition, customer_ref="CUST-00001", request={"reason": "lost"})


def _pending_proposal(journey: Journey) -> ProposedAction:
    with transaction.atomic():
        locked = lock_journey(journey.pk)
        proposal = proposal_create(
            locked,
            action="block_card",
            params={"card": "C1", "reason": "lost"},
            explanation="test",
            key=f"pending-{journey.pk}",
            agent=journey.agent,
        )
        ProposedAction.objects.filter(pk=proposal.pk).update(status=ProposedAction.Status.PENDING)
        Journey.objects.filter(pk=journey.pk).update(
            status=Journey.Status.WAITING_APPROVAL, waiting_on=Journey.WaitingOn.APPROVAL
        )
    return ProposedAction.objects.get(pk=proposal.pk)


def test_take_over_moves_the_epoch_and_gives_the_person_control(supervisor):
    journey = _journey()
    taken = journey_take_over(journey_id=journey.pk, user=supervisor, note="customer asked for a person")
    assert taken.epoch == journey.epoch + 1
    assert taken.controller_user == supervisor
    assert taken.status == Journey.Status.HUMAN
    assert taken.next_run_at is None
    event = taken.events.get(kind=Event.Kind.TAKEOVER)
    assert event.actor_user == supervisor
    assert event.data["previous"]["status"] == Journey.Status.RUNNING


def test_a_second_takeover_is_told_who_has_the_journey(supervisor, demo):
    from django.contrib.auth.models import Group, User

    colleague = User.objects.create_user("colleague", password="x")
    colleague.groups.add(Group.objects.get(name="Cards team"))
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with pytest.raises(AlreadyControlled) as refused:
        journey_take_over(journey_id=journey.pk, user=colleague)
    assert refused.value.holder == "supervisor"
    assert "supervisor took over" in str(refused.value)
    assert Journey.objects.get(pk=journey.pk).controller_user == supervisor


def test_people_without_the_take_over_right_cannot_take_over(compliance, supervisor2):
    journey = _journey()
    for user in (compliance, supervisor2):
        with pytest.raises(NotAllowed):
            journey_take_over(journey_id=journey.pk, user=user)
    assert Journey.objects.get(pk=journey.pk).controller_user is None


def test_a_finished_journey_cannot_be_taken_over(supervisor):
    journey = _journey()
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.COMPLETED)
    with pytest.raises(ControlError, match="completed"):
        journey_take_over(journey_id=journey.pk, user=supervisor)


def test_pending_agent_proposals_stay_pending_after_a_takeover(supervisor):
    journey = _journey()
    proposal = _pending_proposal(journey)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    proposal.refresh_from_db()
    assert proposal.status == ProposedAction.Status.PENDING


def test_only_the_person_in_control_can_hand_back(supervisor, compliance):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with pytest.raises(NotAllowed, match="supervisor is in control"):
        journey_hand_back(journey_id=journey.pk, user=compliance)
    with pytest.raises(NotAllowed, match="may not force"):
        journey_hand_back(journey_id=journey.pk, user=compliance, force=True)
    assert Journey.objects.get(pk=journey.pk).controller_user == supervisor


def test_a_forced_hand_back_is_recorded(supervisor, admin_user):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with pytest.raises(NotAllowed):
        journey_hand_back(journey_id=journey.pk, user=admin_user)  # not without saying "force"
    back = journey_force_hand_back(journey_id=journey.pk, user=admin_user, note="shift ended")
    assert back.controller_user is None
    event = back.events.get(kind=Event.Kind.HAND_BACK)
    assert event.data["forced"] is True
    assert event.data["from"] == "supervisor"
    assert "forced a hand-back from supervisor" in event.summary


def test_hand_back_puts_the_note_in_the_agent_context_and_resumes_from_the_current_state(
    supervisor,
):
    journey = _journey()
    Journey.objects.filter(pk=journey.pk).update(current_step="review_activity")
    journey_take_over(journey_id=journey.pk, user=supervisor)
    back = journey_hand_back(journey_id=journey.pk, user=supervisor, note="Customer confirmed the card is lost.")
    assert back.status == Journey.Status.RUNNING
    assert back.controller_user is None
    assert back.epoch == journey.epoch + 2
    assert back.current_step == "review_activity"
    assert back.next_run_at is not None
    assert "supervisor: Customer confirmed the card is lost." in back.context["guidance"]


def test_hand_back_with_pending_proposals_waits_for_their_decision(supervisor):
    journey = _journey()
    _pending_proposal(journey)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    back = journey_hand_back(journey_id=journey.pk, user=supervisor)
    assert back.status == Journey.Status.WAITING_APPROVAL
    assert back.waiting_on == Journey.WaitingOn.APPROVAL


def test_the_person_in_control_messages_the_customer_through_the_policy_engine(supervisor):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    proposal = person_send_message(journey_id=journey.pk, user=supervisor, text="I am looking into it now.")
    assert proposal.status == ProposedAction.Status.EXECUTED
    assert proposal.proposed_by_user == supervisor
    kinds = list(proposal.events.order_by("id").values_list("kind", flat=True))
    assert kinds == [
        Event.Kind.ACTION_PROPOSED,
        Event.Kind.ACTION_DECIDED,
        Event.Kind.ACTION_EXECUTED,
        Event.Kind.MESSAGE_OUT,
    ]
    message = proposal.events.get(kind=Event.Kind.MESSAGE_OUT)
    assert message.actor_user == supervisor
    assert message.summary == "I am looking into it now."


def test_a_resubmitted_form_acts_once(supervisor):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    first = person_send_message(journey_id=journey.pk, user=supervisor, text="Hello", key="abc123")
    again = person_send_message(journey_id=journey.pk, user=supervisor, text="Hello", key="abc123")
    assert first.pk == again.pk
    assert journey.events.filter(kind=Event.Kind.MESSAGE_OUT).count() == 1


def test_a_person_proposal_with_bad_parameters_writes_nothing(supervisor):
    from journeys.actions import ActionParamsError

    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    before = Event.objects.count()
    with pytest.raises(ActionParamsError, match="amount"):
        person_propose(
            journey_id=journey.pk,
            user=supervisor,
            action="issue_refund",
            params={"account": "A1", "amount": "lots", "reason": "goodwill"},
            explanation="x",
        )
    assert Event.objects.count() == before
    assert not ProposedAction.objects.filter(journey=journey).exists()


def test_nobody_acts_on_a_journey_they_do_not_control(supervisor):
    journey = _journey()
    with pytest.raises(NotAllowed, match="Take over"):
        person_send_message(journey_id=journey.pk, user=supervisor, text="hi")


def test_the_person_in_control_withdraws_a_pending_agent_proposal(supervisor):
    journey = _journey()
    proposal = _pending_proposal(journey)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    withdrawn = proposal_withdraw(proposal_id=proposal.pk, user=supervisor, reason="card already blocked")
    assert withdrawn.status == ProposedAction.Status.WITHDRAWN
    assert withdrawn.decided_by == supervisor
    event = withdrawn.events.get(kind=Event.Kind.ACTION_REJECTED)
    assert event.data["outcome"] == "withdrawn"
    journey.refresh_from_db()
    assert any("withdrawn: card already blocked" in g for g in journey.context["guidance"])
    with pytest.raises(ControlError, match="already withdrawn"):
        proposal_withdraw(proposal_id=proposal.pk, user=supervisor)


# --- the stop button -------------------------------------------------------------------------


@pytest.fixture
def audit_log():
    seen: list[dict] = []

    def listener(sender, **kwargs):
        seen.append(kwargs)

    events.governance_changed.connect(listener)
    yield seen
    events.governance_changed.disconnect(listener)


def test_pause_and_resume_are_audited_and_kept_as_history(admin_user, audit_log):
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    pause = agents_pause(user=admin_user, definition=lost_card, reason="incident 42")
    agents_resume(user=admin_user, definition=lost_card, reason="fixed")
    assert [e["kind"] for e in audit_log] == ["pause", "resume"]
    assert audit_log[0]["actor"] == admin_user
    assert audit_log[0]["reason"] == "incident 42"
    assert audit_log[0]["before"] == {"paused": False}
    assert audit_log[1]["after"] == {"paused": False}
    pause.refresh_from_db()
    assert pause.resumed_by == admin_user and pause.resume_reason == "fixed"
    assert AgentPause.objects.count() == 1


def test_only_people_granted_it_can_pause_agents(supervisor, compliance, admin_user):
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    for user in (supervisor, compliance):
        with pytest.raises(NotAllowed):
            agents_pause(user=user, definition=lost_card, reason="x")
        with pytest.raises(NotAllowed):
            agents_pause(user=user, definition=None, reason="x")
    with pytest.raises(ControlError, match="why"):
        agents_pause(user=admin_user, definition=lost_card, reason="  ")


def test_pausing_twice_says_who_paused_first(admin_user):
    agents_pause(user=admin_user, definition=None, reason="incident")
    with pytest.raises(ControlError, match="already paused by admin"):
        agents_pause(user=admin_user, definition=None, reason="again")
    with pytest.raises(ControlError, match="not paused"):
        agents_resume(user=admin_user, definition=JourneyDefinition.objects.get(key="lost_card"))


def test_the_runtime_gate_refuses_paused_journeys(admin_user):
    journey = _journey()
    fee = _journey("fee_refund")
    agents_pause(user=admin_user, definition=journey.definition, reason="incident")
    assert runtime.agents_may_run(journey) == "paused"
    assert runtime.agents_may_run(fee) is None
    assert runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token="t") == "paused"
    agents_pause(user=admin_user, definition=None, reason="everything")
    assert runtime.agents_may_run(fee) == "paused"


def test_the_sweeper_does_not_requeue_paused_journeys(admin_user, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    journey = _journey()
    Journey.objects.filter(pk=journey.pk).update(next_run_at=timezone.now() - timedelta(minutes=5))
    agents_pause(user=admin_user, definition=journey.definition, reason="incident")
    assert runtime.sweep()["requeued"] == 0
    with django_capture_on_commit_callbacks() as callbacks:
        agents_resume(user=admin_user, definition=journey.definition)
    # The resume enqueued the journey's due turn (and, after commit, writes the timeline events).
    assert len(callbacks) == 2


def test_a_turn_in_flight_when_the_agents_are_paused_drops_its_result(admin_user, monkeypatch):
    journey = _journey()

    class PausingAgent:
        def next_turn(self, snapshot):
            # The pause lands while the agent is thinking (phase B).
            agents_pause(user=admin_user, definition=None, reason="incident")
            return Turn([Proposal("lookup_account", {"customer": snapshot.customer}, "check")])

    monkeypatch.setattr(runtime, "adapter_for", lambda kind: PausingAgent())
    assert runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token="t1") == "paused"
    journey.refresh_from_db()
    assert not journey.proposals.exists()
    assert journey.lease_token == "" and journey.turn_seq == 0
    dropped = journey.events.get(kind=Event.Kind.TURN_DROPPED)
    assert "paused" in dropped.summary


def test_the_person_in_control_executes_approved_proposals_without_waiting_for_the_agent(
    supervisor,
):
    journey = _journey()
    proposal = _pending_proposal(journey)
    ProposedAction.objects.filter(pk=proposal.pk).update(status=ProposedAction.Status.APPROVED)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    from journeys.control import person_execute_approved

    [done] = person_execute_approved(journey_id=journey.pk, user=supervisor)
    assert done.pk == proposal.pk
    assert done.status in (ProposedAction.Status.EXECUTED, ProposedAction.Status.FAILED)
    with pytest.raises(ControlError, match="No approved proposal"):
        person_execute_approved(journey_id=journey.pk, user=supervisor)


def test_hand_back_can_wait_for_the_customers_reply_before_the_agent_goes_on(
    supervisor, django_capture_on_commit_callbacks
):
    from journeys.services import journey_customer_message

    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with django_capture_on_commit_callbacks() as enqueued:
        back = journey_hand_back(
            journey_id=journey.pk, user=supervisor, note="Asked which charge.", then="wait_for_customer"
        )
    assert enqueued == []  # no agent turn until the customer answers
    assert back.status == Journey.Status.RUNNING and back.waiting_on == Journey.WaitingOn.CUSTOMER
    assert back.next_run_at is not None and back.next_run_at > back.state_changed_at  # the customer timeout
    event = back.events.filter(kind=Event.Kind.HAND_BACK).get()
    assert event.data["then"] == "wait_for_customer"
    assert (
        event.summary
        == "supervisor handed back to the agent, which waits for the customer's reply first. Note: Asked which charge."
    )
    with django_capture_on_commit_callbacks() as enqueued:
        woken = journey_customer_message(journey_id=journey.pk, text="The 42.00 one at the bakery.")
    assert len(enqueued) == 1  # the reply wakes the agent
    assert woken.waiting_on == Journey.WaitingOn.NOTHING


def test_waiting_for_a_decision_comes_before_waiting_for_the_customer(supervisor):
    journey = _journey()
    _pending_proposal(journey)
    journey_take_over(journey_id=journey.pk, user=supervisor)
    back = journey_hand_back(journey_id=journey.pk, user=supervisor, then="wait_for_customer")
    assert back.status == Journey.Status.WAITING_APPROVAL


def test_a_forged_hand_back_choice_is_refused(supervisor):
    journey = _journey()
    journey_take_over(journey_id=journey.pk, user=supervisor)
    with pytest.raises(ControlError, match="continues now or waits"):
        journey_hand_back(journey_id=journey.pk, user=supervisor, then="sleep")
    assert Journey.objects.get(pk=journey.pk).controller_user == supervisor


def test_pause_and_resume_appear_once_on_each_live_journey_they_touched(
    admin_user, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    from journeys.control import agents_pause, agents_resume, mark_agents_paused
    from journeys.models import ActionType

    lost = [_journey("lost_card") for _ in range(3)]
    other = _journey("fee_refund")
    finished = _journey("lost_card")
    with transaction.atomic():
        from journeys.services import journey_finish

        journey_finish(lock_journey(finished.pk), Journey.Status.COMPLETED, "Done.")
    definition = JourneyDefinition.objects.get(key="lost_card")
    # One bulk insert for the journeys' events, however many there are.
    with django_assert_max_num_queries(30), django_capture_on_commit_callbacks(execute=True):
        agents_pause(user=admin_user, definition=definition, reason="Core bank incident")
    paused = Event.objects.filter(kind=Event.Kind.PAUSED)
    assert sorted(paused.values_list("journey_id", flat=True)) == sorted(j.pk for j in lost)
    assert paused.first().summary == "admin paused agents on Lost or stolen card: Core bank incident"
    assert [j.agents_paused for j in mark_agents_paused([*lost, other])] == [True, True, True, False]
    with django_capture_on_commit_callbacks(execute=True):
        agents_resume(user=admin_user, definition=definition, reason="Fixed")
    resumed = Event.objects.filter(kind=Event.Kind.RESUMED)
    assert sorted(resumed.values_list("journey_id", flat=True)) == sorted(j.pk for j in lost)
    assert not mark_agents_paused(lost)[0].agents_paused
    # An action-type pause stops proposals, not turns: no journey's timeline is touched.
    with django_capture_on_commit_callbacks(execute=True):
        agents_pause(user=admin_user, action_type=ActionType.objects.get(key="issue_refund"), reason="Refund review")
    assert Event.objects.filter(kind=Event.Kind.PAUSED).count() == 3
