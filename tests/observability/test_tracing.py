"""One trace from a supervisor's click, through the Celery task it enqueues, to the core bank.

The test process plays the web server (Django and Celery publishing instrumented into an
in-memory exporter); a real worker process runs with ``OTEL_TRACES_EXPORTER=console`` and prints
its spans, one JSON object per line. The hand-back request's trace id must reach the worker's
task span and the core-bank call the turn makes.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from console.celery import app as celery_app
from journeys.models import Agent, Journey
from journeys.services import journey_start

from ..faults.conftest import suite_database_url, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]


def worker_lines(processes) -> list[dict]:
    found = []
    for path in processes.logs.glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
    return found


def worker_spans(processes) -> list[dict]:
    return [line for line in worker_lines(processes) if "context" in line]


@pytest.fixture
def traced_web():
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    DjangoInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    yield exporter
    CeleryInstrumentor().uninstrument()
    DjangoInstrumentor().uninstrument()


def test_a_trace_runs_from_the_web_through_celery_to_the_core_bank(
    transactional_db, supervisor, processes, fault_queue, traced_web
):
    Agent.objects.filter(name="Scripted agent").update(config={})
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = fault_queue
    try:
        # The journey's first turn waits in the queue; the supervisor takes over and hands back
        # before any worker runs, so the turn that runs is the one the hand-back enqueued.
        journey = journey_start(definition="lost_card", customer_ref="CUST-00006", request={"reason": "lost"})
        from django.test import Client

        client = Client()
        client.force_login(supervisor)
        assert client.post(f"/journeys/{journey.pk}/take-over/", {"note": ""}).status_code in (200, 302)
        assert client.post(f"/journeys/{journey.pk}/hand-back/", {"note": "go on"}).status_code in (200, 302)
    finally:
        celery_app.conf.task_default_queue = previous_queue
    [hand_back] = [s for s in traced_web.get_finished_spans() if s.name == "POST journeys/<int:pk>/hand-back/"]
    # The hand-back enqueued the next turn inside its own span.
    enqueued = [
        s
        for s in traced_web.get_finished_spans()
        if s.name == "apply_async/journeys.tasks.run_step"
        and s.parent
        and s.parent.span_id == hand_back.context.span_id
    ]
    assert len(enqueued) == 1
    trace_id = f"0x{hand_back.context.trace_id:032x}"

    processes.env.update(
        {
            "DATABASE_URL": suite_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "handoff-worker",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
    )
    processes.worker(fault_queue, concurrency=1, beat=False)

    def traced_core_bank_call() -> list[dict]:
        # The task's span is exported when the task ends, after the core-bank span inside it.
        same_trace = [s for s in worker_spans(processes) if s["context"]["trace_id"] == trace_id]
        if not any("run_step" in s["name"] for s in same_trace):
            return []
        return [s for s in same_trace if s["name"].startswith("corebank.")]

    calls = wait_until(
        traced_core_bank_call, 90, "no core-bank span carried the hand-back's trace:\n" + processes.log_tail()
    )
    same_trace = [s for s in worker_spans(processes) if s["context"]["trace_id"] == trace_id]
    names = {s["name"] for s in same_trace}
    assert any("run_step" in name for name in names), names  # the Celery task span
    assert calls[0]["attributes"]["handoff.journey_id"] == journey.pk
    assert Journey.objects.get(pk=journey.pk).epoch == 2
    # The worker's structured turn line joins the same trace.
    turns = [
        line for line in worker_lines(processes) if line.get("event") == "turn" and line["journey_id"] == journey.pk
    ]
    assert any(line["epoch"] == 2 and line.get("trace_id") == trace_id[2:] for line in turns), turns
