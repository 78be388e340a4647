"""Structured logs and traces, both off by default.

- ``LOG_FORMAT=json``: every log line is one JSON object; the runtime writes one line per agent
  turn (``event=turn``), the console one per decision (``event=decision``) and per HTTP request
  (``event=request``), each with the journey id, epoch, turn and outcome where they apply.
- ``OTEL_TRACES_EXPORTER=otlp`` (or ``console``): OpenTelemetry traces across the web request,
  the Celery task it enqueues (the context travels in the message headers) and the core bank
  call the task makes. The exporter is configured by the standard ``OTEL_*`` variables
  (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``…). Needs the ``otel`` extra.

This module sits in ``journeys`` (the bottom layer) so the runtime and the core-bank calls can use
it; it imports OpenTelemetry only when tracing is on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Fields a structured line may carry besides the message (passed with ``extra=``).
FIELDS = (
    "event",
    "journey_id",
    "epoch",
    "turn",
    "outcome",
    "duration_ms",
    "proposal_id",
    "action",
    "decision",
    "actor",
    "method",
    "path",
    "status",
    "user_id",
    "task_id",
)


def json_logs_enabled() -> bool:
    return os.environ.get("LOG_FORMAT", "").lower() == "json"


def tracing_enabled() -> bool:
    return os.environ.get("OTEL_TRACES_EXPORTER", "none").lower() not in ("", "none")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the known extra fields, and the
    current trace and span ids when tracing is on (so logs and traces join up)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        trace_ids = _trace_ids()
        if trace_ids:
            line.update(trace_ids)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def _trace_ids() -> dict[str, str] | None:
    if not tracing_enabled():
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def log_turn(log: logging.Logger, *, journey_id: int, epoch: int, turn: int, outcome: str, duration_ms: float) -> None:
    """The one line per agent turn."""
    log.info(
        "agent turn J-%s epoch %s turn %s: %s",
        journey_id,
        epoch,
        turn,
        outcome,
        extra={
            "event": "turn",
            "journey_id": journey_id,
            "epoch": epoch,
            "turn": turn,
            "outcome": outcome,
            "duration_ms": round(duration_ms, 2),
        },
    )
    if tracing_enabled():
        from opentelemetry import trace

        span = trace.get_current_span()
        span.set_attribute("handoff.journey_id", journey_id)
        span.set_attribute("handoff.epoch", epoch)
        span.set_attribute("handoff.turn", turn)
        span.set_attribute("handoff.outcome", outcome)


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A tracing span around a block when tracing is on; nothing at all otherwise."""
    if not tracing_enabled():
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer("handoff").start_as_current_span(name) as current:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(f"handoff.{key}", value)
        yield


_tracing_ready = False


def setup_tracing(service_name: str) -> bool:
    """Install the tracer provider and instrument Django, Celery and psycopg, once per process.

    Returns whether tracing is on. Call it in each process that does work: the web process at
    start-up (``console.apps``), each Celery pool process (``worker_process_init``)."""
    global _tracing_ready
    if not tracing_enabled():
        return False
    if _tracing_ready:
        return True
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if exporter_name == "console":
        # One span per line on standard output: easy to grep, easy to ship.
        exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    _tracing_ready = True
    return True


DECISION_KINDS = {"action_decided", "action_approved", "action_rejected", "action_expired"}
_decision_log = logging.getLogger("handoff.decisions")


def log_decision_event(sender: Any, event: Any, **kwargs: Any) -> None:
    """``event_recorded`` receiver: one line per policy or human decision, once it commits."""
    if event.kind not in DECISION_KINDS:
        return
    from django.db import transaction

    journey = event.journey
    outcome = (event.data or {}).get("status") or event.kind.removeprefix("action_")
    fields = {
        "event": "decision",
        "journey_id": event.journey_id,
        "epoch": event.epoch,
        "turn": journey.turn_seq,
        "outcome": outcome,
        "proposal_id": event.proposal_id,
        "decision": event.kind,
        "actor": event.actor_kind,
    }
    message = f"decision J-{event.journey_id} proposal {event.proposal_id}: {event.kind} -> {outcome}"
    transaction.on_commit(lambda: _decision_log.info(message, extra=fields))


def connect_decision_log() -> None:
    from .events import event_recorded

    event_recorded.connect(log_decision_event, dispatch_uid="handoff.observability.decisions")
