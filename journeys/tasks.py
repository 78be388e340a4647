"""Celery tasks of the journey runtime: thin adapters around ``journeys.runtime``.

Delivery is at least once (``acks_late``, ``reject_on_worker_lost``); every task here is
idempotent: a turn carries its epoch and turn number and does nothing when either moved.
"""

from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task
from django.db import OperationalError

from . import runtime
from .observability import log_turn

log = logging.getLogger("handoff.runtime")


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def run_step(self, journey_id: int, epoch: int, turn_seq: int) -> str:
    # The message id is the lease token: a redelivery of the same message may resume its lease.
    token = self.request.id or uuid.uuid4().hex
    started = time.perf_counter()
    try:
        outcome = runtime.run_turn(journey_id, epoch, turn_seq, token=token)
    except OperationalError:
        # The database went away mid-turn: the transaction rolled back whole; Celery retries.
        log_turn(
            log,
            journey_id=journey_id,
            epoch=epoch,
            turn=turn_seq,
            outcome="database-error",
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        raise
    log_turn(
        log,
        journey_id=journey_id,
        epoch=epoch,
        turn=turn_seq,
        outcome=outcome,
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    return outcome


@shared_task(acks_late=True)
def sweep_due_journeys() -> dict[str, int]:
    return runtime.sweep()
