"""The runtime's contracts, driven turn by turn without a worker."""

from __future__ import annotations

import pytest

from demo.models import CoreEffect
from journeys import runtime
from journeys.models import Agent, Event, Journey, ProposedAction
from journeys.services import journey_start


def start(definition: str = "lost_card", **request) -> Journey:
    return journey_start(definition=definition, customer_ref="CUST-00002", request={"reason": "lost", **request})


def turn(journey: Journey, token: str = "t") -> str:
    journey.refresh_from_db()
    return runtime.run_turn(journey.pk, journey.epoch, journey.turn_seq, token=token)


def test_first_turn_proposes_and_executes_the_identity_lookup(agent):
    journey = start()
    assert turn(journey) == "continued"
    proposal = journey.proposals.get()
    assert proposal.action_type.key == "lookup_account"
    assert proposal.status == ProposedAction.Status.EXECUTED
    journey.refresh_from_db()
    assert journey.context["results"]["lookup_account"]["status"] == "executed"
    assert journey.turn_seq == 1


def test_stale_epoch_drops_the_turn_and_records_only_that(agent):
    journey = start()
    scheduled_epoch = journey.epoch
    Journey.objects.filter(pk=journey.pk).update(epoch=scheduled_epoch + 1)  # a takeover happened
    events_before = journey.events.count()

    outcome = runtime.run_turn(journey.pk, scheduled_epoch, journey.turn_seq, token="late")

    assert outcome == "stale"
    assert journey.proposals.count() == 0
    new_events = list(journey.events.order_by("id")[events_before:])
    assert [e.kind for e in new_events] == [Event.Kind.TURN_DROPPED]
    assert "epoch 0" in new_events[0].summary and "epoch 1" in new_events[0].summary
    journey.refresh_from_db()
    assert journey.turn_seq == 0 and journey.turn_starts == 0


def test_result_coming_back_after_a_takeover_is_dropped(agent, monkeypatch):
    journey = start()
    from demo.agent import ScriptedAgent

    original = ScriptedAgent.next_turn

    def takeover_while_thinking(self, snapshot):
        Journey.objects.filter(pk=snapshot.journey_id).update(epoch=5)
        return original(self, snapshot)

    monkeypatch.setattr(ScriptedAgent, "next_turn", takeover_while_thinking)
    assert turn(journey) == "stale"
    assert journey.proposals.count() == 0
    dropped = journey.events.get(kind=Event.Kind.TURN_DROPPED)
    assert dropped.data["phase"] == "when its result came back"


def test_duplicate_delivery_of_the_same_task_has_one_effect(agent):
    journey = start()
    args = (journey.pk, journey.epoch, journey.turn_seq)
    assert runtime.run_turn(*args, token="m1") == "continued"
    assert runtime.run_turn(*args, token="m1") == "duplicate"
    assert runtime.run_turn(*args, token="m2") == "duplicate"
    assert journey.proposals.count() == 1


def test_a_live_lease_keeps_a_second_worker_out(agent):
    journey = start()
    from datetime import timedelta

    from django.utils import timezone

    Journey.objects.filter(pk=journey.pk).update(lease_token="other", lease_until=timezone.now() + timedelta(minutes=1))
    assert turn(journey, token="mine") == "held"
    assert journey.proposals.count() == 0


def _begin_at_once(journey: Journey, *, epoch: int | None = None, turn_seq: int | None = None, token: str = "fast"):
    from datetime import timedelta

    from django.utils import timezone

    from journeys.lifecycle import journey as lifecycle

    now = timezone.now()
    return lifecycle.begin_turn_at_once(
        journey.pk,
        epoch=journey.epoch if epoch is None else epoch,
        turn_seq=journey.turn_seq if turn_seq is None else turn_seq,
        token=token,
        now=now,
        until=now + timedelta(seconds=60),
        max_starts=3,
        max_turns=40,
    )


def test_a_plain_turn_starts_in_one_statement_that_takes_the_lease(agent, django_assert_num_queries):
    journey = start()
    journey.refresh_from_db()
    with django_assert_num_queries(1):
        taken = _begin_at_once(journey)
    assert taken is not None
    assert (taken.definition, taken.step, taken.customer) == ("lost_card", journey.current_step, "CUST-00002")
    assert taken.context == journey.context and taken.agent_kind == agent.kind
    assert not taken.ready_to_execute
    marker = journey.updated_at
    journey.refresh_from_db()
    assert journey.lease_token == "fast" and journey.turn_starts == 1
    assert journey.updated_at == marker  # the lease is not on the board: its change marker stays


def _stale(journey, agent):
    return {"epoch": journey.epoch - 1}


def _duplicate(journey, agent):
    return {"turn_seq": journey.turn_seq + 1}


def _held(journey, agent):
    from datetime import timedelta

    from django.utils import timezone

    Journey.objects.filter(pk=journey.pk).update(lease_token="other", lease_until=timezone.now() + timedelta(minutes=1))


def _waiting_on_customer(journey, agent):
    Journey.objects.filter(pk=journey.pk).update(waiting_on=Journey.WaitingOn.CUSTOMER)


def _retry_due(journey, agent):
    Journey.objects.filter(pk=journey.pk).update(waiting_on=Journey.WaitingOn.RETRY)


def _starts_spent(journey, agent):
    Journey.objects.filter(pk=journey.pk).update(turn_starts=3)


def _turns_spent(journey, agent):
    Journey.objects.filter(pk=journey.pk).update(turn_seq=40)
    return {"turn_seq": 40}


def _agent_disabled(journey, agent):
    Agent.objects.filter(pk=agent.pk).update(is_enabled=False)


def _no_agent(journey, agent):
    Journey.objects.filter(pk=journey.pk).update(agent=None)


def _any_pause(journey, agent):
    from django.contrib.auth import get_user_model

    from journeys.models import ActionType, AgentPause

    admin = get_user_model().objects.get(username="admin")
    other_type = ActionType.objects.exclude(key="lookup_account").first()
    AgentPause.objects.create(action_type=other_type, paused_by=admin, reason="a pause of one action type")


@pytest.mark.parametrize(
    "obstacle",
    [
        _stale,
        _duplicate,
        _held,
        _waiting_on_customer,
        _retry_due,
        _starts_spent,
        _turns_spent,
        _agent_disabled,
        _no_agent,
        _any_pause,
    ],
)
def test_the_one_statement_start_leaves_every_obstacle_to_the_locked_path(agent, obstacle):
    """Whatever could refuse, delay or quarantine a turn makes the one-statement start write
    nothing and answer None, so ``run_turn`` takes the lock and records what the case records."""
    journey = start()
    journey.refresh_from_db()
    overrides = obstacle(journey, agent) or {}
    before = Journey.objects.values("turn_starts", "lease_token", "lease_until", "updated_at").get(pk=journey.pk)
    assert _begin_at_once(journey, **overrides) is None
    assert (
        Journey.objects.values("turn_starts", "lease_token", "lease_until", "updated_at").get(pk=journey.pk) == before
    )


def test_executing_the_same_proposal_twice_has_one_effect(agent):
    journey = start()
    turn(journey)  # lookup_account (read, no effect)
    turn(journey)  # goto block_card
    turn(journey)  # propose and execute block_card
    proposal = journey.proposals.get(action_type__key="block_card")
    assert proposal.status == ProposedAction.Status.EXECUTED
    from journeys.actions import execute

    first = CoreEffect.objects.get(idempotency_key=proposal.idempotency_key)
    again = execute(proposal)  # as a redelivered execution would
    assert again == first.result
    assert CoreEffect.objects.filter(idempotency_key=proposal.idempotency_key).count() == 1


def test_transient_failures_retry_with_backoff_then_fall_back_to_a_person(agent, settings):
    Agent.objects.filter(pk=agent.pk).update(config={"fail_steps": ["verify_identity"]})
    journey = start()
    outcomes = [turn(journey) for _ in range(settings.HANDOFF["MAX_STEP_ATTEMPTS"])]
    assert outcomes[:-1] == ["retry"] * (len(outcomes) - 1)
    assert outcomes[-1] == "fallback"
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN
    assert journey.needs_person
    assert "Retries spent" in journey.needs_person_reason
    retries = journey.events.filter(kind=Event.Kind.TURN_RETRY)
    assert retries.count() == len(outcomes) - 1
    delays = [e.data["delay_seconds"] for e in retries.order_by("id")]
    assert delays == sorted(delays) and delays[0] < delays[-1]
    assert journey.events.filter(kind=Event.Kind.EXCEPTION, data__kind="step_failed").exists()


def test_a_turn_that_never_finishes_is_quarantined(agent, settings):
    journey = start()
    limit = settings.HANDOFF["QUARANTINE_AFTER_STARTS"]
    Journey.objects.filter(pk=journey.pk).update(turn_starts=limit)  # killed its worker `limit` times
    assert turn(journey) == "quarantined"
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN
    assert journey.events.filter(kind=Event.Kind.TURN_QUARANTINED).exists()


def test_agent_bug_falls_back_instead_of_stalling(agent, monkeypatch):
    from demo.agent import ScriptedAgent

    monkeypatch.setattr(ScriptedAgent, "next_turn", lambda self, s: 1 / 0)
    journey = start()
    assert turn(journey) == "fallback"
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN
    assert "ZeroDivisionError" in journey.needs_person_reason


def test_sweeper_requeues_a_due_journey_that_nobody_runs(agent, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    journey = start()
    Journey.objects.filter(pk=journey.pk).update(next_run_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as callbacks:
        assert runtime.sweep() == {"requeued": 1, "abandoned": 0}
    assert len(callbacks) == 1
    # A second sweep right after does not pile up duplicates.
    with django_capture_on_commit_callbacks() as callbacks:
        assert runtime.sweep()["requeued"] == 0
    assert callbacks == []


def test_sweeper_tells_a_queued_turn_from_a_lost_one(agent, settings, django_capture_on_commit_callbacks):
    """A turn waiting behind a queue backlog longer than the grace is re-sent after 1, 2, 4 …
    graces, not on every sweep; once the turn runs, its next turn is swept with the bare grace."""
    from datetime import timedelta

    from django.utils import timezone

    settings.HANDOFF = {**settings.HANDOFF, "SWEEP_GRACE_SECONDS": 1.0, "SWEEP_BACKOFF_MAX_SECONDS": 16.0}
    journey = start()
    t0 = timezone.now()
    Journey.objects.filter(pk=journey.pk).update(next_run_at=t0)
    sent_at = []
    # Two minutes of backlog, one sweep every half second (four times the beat's pace in the
    # fault tests): the old sweeper re-sent it on every sweep after the first grace (~238 copies).
    for i in range(240):
        now = t0 + timedelta(seconds=0.5 * i)
        with django_capture_on_commit_callbacks() as callbacks:
            requeued = runtime.sweep(now=now)["requeued"]
        assert requeued == len(callbacks)
        if requeued:
            sent_at.append((now - t0).total_seconds())
    # Re-sent once the grace passed, then after 2, 4, 8, 16 s of waiting, then every 16 s (the cap).
    assert sent_at[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert sent_at[5:] == [32.0 + 16.0 * k for k in range(len(sent_at) - 5)]
    assert len(sent_at) == 11
    journey.refresh_from_db()
    assert journey.next_run_at == t0  # the due time is kept: the back-off grows from it
    assert journey.dispatch_deadline is not None

    # The queued message finally runs: the turn's end schedules the next turn and clears the
    # deadline, so a lost next message is re-sent after the bare grace again.
    assert turn(journey) in {"continued", "advanced", "executed"}
    journey.refresh_from_db()
    assert journey.dispatch_deadline is None
    with django_capture_on_commit_callbacks() as callbacks:
        assert runtime.sweep(now=journey.next_run_at + timedelta(seconds=1.5))["requeued"] == 1
    assert len(callbacks) == 1


def test_sweeper_abandons_a_customer_who_never_replied(agent):
    from datetime import timedelta

    from django.utils import timezone

    journey = start()
    Journey.objects.filter(pk=journey.pk).update(
        waiting_on=Journey.WaitingOn.CUSTOMER, next_run_at=timezone.now() - timedelta(seconds=1)
    )
    assert runtime.sweep()["abandoned"] == 1
    journey.refresh_from_db()
    assert journey.status == Journey.Status.ABANDONED
    assert journey.events.filter(kind=Event.Kind.ABANDONED, data__reason="customer_timeout").exists()


def test_customer_reply_wakes_a_waiting_agent(agent, django_capture_on_commit_callbacks):
    from journeys.services import journey_customer_message

    journey = start()
    Journey.objects.filter(pk=journey.pk).update(waiting_on=Journey.WaitingOn.CUSTOMER)
    with django_capture_on_commit_callbacks() as callbacks:
        journey_customer_message(journey_id=journey.pk, text="here", data={"identity_ok": True})
    journey.refresh_from_db()
    assert journey.waiting_on == Journey.WaitingOn.NOTHING
    assert journey.context["reply"]["data"] == {"identity_ok": True}
    assert len(callbacks) == 1


def test_message_to_a_finished_journey_is_refused_clearly(agent):
    from journeys.services import JourneyError, journey_customer_message

    journey = start()
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.COMPLETED)
    with pytest.raises(JourneyError, match="completed"):
        journey_customer_message(journey_id=journey.pk, text="hello?")


def test_low_confidence_classification_goes_to_a_person(agent):
    Agent.objects.filter(pk=agent.pk).update(config={"low_confidence_rate": 1.0})
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00003", request={"merchant": "zzz"})
    Journey.objects.filter(pk=journey.pk).update(
        current_step="classify", context={**journey.context, "facts": {"transaction": {"amount": "10.00"}}}
    )
    assert turn(journey) == "handed-off"
    journey.refresh_from_db()
    assert journey.status == Journey.Status.HUMAN
    exception = journey.events.get(kind=Event.Kind.EXCEPTION)
    assert exception.data["kind"] == "low_confidence"
