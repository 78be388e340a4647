"""Structured logs: one JSON line per turn, decision and HTTP request."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from django.conf import settings
from django.test import override_settings

from journeys.models import Journey
from journeys.observability import JsonFormatter, connect_decision_log, log_decision_event
from journeys.services import journey_start
from journeys.tasks import run_step


def lines(caplog, event: str) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if getattr(r, "event", None) == event]


@pytest.fixture
def decision_log():
    from journeys.events import event_recorded

    connect_decision_log()
    yield
    event_recorded.disconnect(log_decision_event, dispatch_uid="handoff.observability.decisions")


def test_each_turn_writes_one_json_line_with_journey_epoch_turn_and_outcome(
    demo, caplog, decision_log, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.INFO)
    journey = journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})
    with django_capture_on_commit_callbacks(execute=True):
        outcome = run_step.apply(args=(journey.pk, journey.epoch, journey.turn_seq)).get()
    [turn] = lines(caplog, "turn")
    assert turn["journey_id"] == journey.pk
    assert turn["epoch"] == journey.epoch and turn["turn"] == 0
    assert turn["outcome"] == outcome
    assert turn["duration_ms"] >= 0 and turn["level"] == "INFO" and turn["logger"] == "handoff.runtime"
    # The agent's proposal was decided by the policy engine in that turn: one decision line.
    [decision] = lines(caplog, "decision")
    assert decision["journey_id"] == journey.pk and decision["epoch"] == journey.epoch
    assert decision["decision"] == "action_decided" and decision["outcome"] == "auto_approved"
    assert decision["proposal_id"] == journey.proposals.get().pk


def test_a_stale_turn_is_logged_with_its_outcome(demo, caplog):
    caplog.set_level(logging.INFO)
    journey = journey_start(definition="lost_card", customer_ref="CUST-00002", request={"reason": "lost"})
    Journey.objects.filter(pk=journey.pk).update(epoch=journey.epoch + 1)
    run_step.apply(args=(journey.pk, journey.epoch, journey.turn_seq))
    [turn] = lines(caplog, "turn")
    assert (turn["outcome"], turn["epoch"]) == ("stale", journey.epoch)


def test_a_rolled_back_decision_is_not_logged(demo, caplog, decision_log, django_capture_on_commit_callbacks):
    caplog.set_level(logging.INFO)
    journey = journey_start(definition="lost_card", customer_ref="CUST-00003", request={"reason": "lost"})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_step.apply(args=(journey.pk, journey.epoch, journey.turn_seq))
    assert callbacks  # the line waits for the commit
    assert lines(caplog, "decision") == []


@override_settings(MIDDLEWARE=["console.request_log.RequestLogMiddleware", *settings.MIDDLEWARE])
def test_each_request_writes_one_json_line(client, supervisor, caplog):
    caplog.set_level(logging.INFO)
    journey = journey_start(definition="lost_card", customer_ref="CUST-00001", request={"reason": "lost"})
    client.force_login(supervisor)
    assert client.get(f"/journeys/{journey.pk}/").status_code == 200
    assert client.get("/journeys/999999/").status_code == 404
    found, missing = lines(caplog, "request")
    assert found["method"] == "GET" and found["path"] == f"/journeys/{journey.pk}/"
    assert found["status"] == 200 and found["journey_id"] == journey.pk and found["user_id"] == supervisor.pk
    assert missing["status"] == 404 and missing["journey_id"] == 999999


def test_a_request_line_never_loads_the_user_itself(client, db, caplog, django_assert_num_queries):
    caplog.set_level(logging.INFO)
    with override_settings(MIDDLEWARE=["console.request_log.RequestLogMiddleware"]), django_assert_num_queries(1):
        response = client.get("/healthz")  # SELECT 1, and nothing for the log line
    assert response.status_code == 200
    [line] = lines(caplog, "request")
    assert line["status"] == 200 and "user_id" not in line


def test_the_formatter_writes_exceptions_as_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = JsonFormatter().format(record)
    assert "\n" not in out
    parsed = json.loads(out)
    assert parsed["message"] == "failed" and "ValueError: boom" in parsed["exception"]
