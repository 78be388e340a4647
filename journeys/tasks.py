"""Celery tasks of the journey runtime: thin adapters around ``journeys.runtime``.

Delivery is at least once (``acks_late``, ``reject_on_worker_lost``); every task here is
idempotent: a turn carries its epoch and turn number and does nothing when either moved.

A turn whose journey may go on at once hands its next turn to the task that ran it, which runs
it in the same process instead of sending it through the broker, for as long as the task has
run less than ``HANDOFF["CONTINUE_SECONDS"]`` (``send_turn``). Each turn is still a turn of its
own — its own lease, fences, transactions and log line — so nothing but the broker's hop is
saved; a journey keeps its worker process for at most that long past its first turn, and then
its next turn queues behind the others like any other. When the process dies in the middle of a
carried turn, the message that started the run is delivered again and takes the run up where it
stopped (``_resume_carried``).
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from . import runtime
from .observability import log_turn

log = logging.getLogger("handoff.runtime")

TurnArgs = tuple[int, int, int]  # journey id, epoch, turn number


@dataclass
class _Carry:
    """The journey a running ``run_step`` may carry on with, and its next turn once sent."""

    journey_id: int
    next: TurnArgs | None = None


_carrying: contextvars.ContextVar[_Carry | None] = contextvars.ContextVar("handoff_carrying", default=None)


def send_turn(args: TurnArgs, *, countdown: float | None = None) -> None:
    """Send a journey's next turn (called once the transaction that scheduled it committed): to
    the ``run_step`` running this journey's turn in this thread, which runs it next if its time
    allows, else through the broker."""
    carry = _carrying.get()
    if not countdown and carry is not None and carry.journey_id == args[0] and carry.next is None:
        carry.next = args
    elif countdown:
        run_step.apply_async(args=args, countdown=countdown)
    else:
        run_step.delay(*args)


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
    # A turn carried on in the same task leases with the message id and its turn number.
    token = self.request.id or uuid.uuid4().hex
    until = time.perf_counter() + float(settings.HANDOFF["CONTINUE_SECONDS"])
    carry = _Carry(journey_id)
    reset = _carrying.set(carry)
    try:
        outcome = _turn(journey_id, epoch, turn_seq, token)
        if outcome == "duplicate":
            outcome = _resume_carried(journey_id, token) or outcome
        while carry.next is not None and time.perf_counter() < until:
            args, carry.next = carry.next, None
            try:
                outcome = _turn(*args, f"{token}+{args[2]}")
            except OperationalError:
                # The carried turn rolled back whole: send it through the broker, whose
                # delivery retries it with back-off as any other turn.
                carry.next = args
                break
        return outcome
    finally:
        _carrying.reset(reset)
        if carry.next is not None:
            run_step.delay(*carry.next)


def _turn(journey_id: int, epoch: int, turn_seq: int, token: str) -> str:
    """One turn, with its structured log line."""
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


def _resume_carried(journey_id: int, token: str) -> str | None:
    """This message's turn already ran: when a turn this task carried on with holds the lease,
    the process running it died (this is the redelivery) — run that turn again under its lease,
    as a redelivered message resumes its own. None when there is nothing of ours to resume."""
    from .models import Journey

    carried = Journey.objects.filter(pk=journey_id, lease_token__startswith=f"{token}+")
    found = carried.values_list("epoch", "turn_seq", "lease_token").first()
    if found is None:
        return None
    epoch, turn_seq, lease = found
    return _turn(journey_id, epoch, turn_seq, lease)


@shared_task(acks_late=True)
def sweep_due_journeys() -> dict[str, int]:
    return runtime.sweep()
