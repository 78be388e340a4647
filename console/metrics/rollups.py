"""Keeping the metric facts and daily roll-ups (``console.models``) up to date.

``rollup_refresh`` is incremental: it recomputes the facts of every journey with events past the
watermark (plus the journeys whose repeat-contact figures those can change), then the daily
counters of every (definition, day) those facts touch, and moves the watermark. ``rollup_rebuild``
recomputes everything from scratch; a test proves both give the same rows.

Event ids are taken from a sequence before their transaction commits, so an event can become
visible with an id below the watermark. Each refresh therefore also rescans the events written
since a little before the previous run (``RESCAN_SECONDS``); recomputing a journey twice is
harmless because facts are a pure function of the journey's record.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from journeys.models import Event, Journey, ProposedAction

from ..models import DailyRollup, DecisionFact, JourneyFact, RollupState, StepFact
from .definitions import REPEAT_WINDOW, daily_counters

RESCAN_SECONDS = 120
STATE_NAME = "metrics"
BATCH = 200

PERSON_EVENTS_EXCLUDED = {Event.Kind.ANNOTATION}
ERROR_EVENTS = {Event.Kind.TURN_FAILED, Event.Kind.TURN_QUARANTINED}


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


# --- facts of one journey -------------------------------------------------------------------


def _journey_fact(journey: Journey, events: list[Event]) -> JourneyFact:
    person = escalated = taken_over = errored = False
    abandoned_step = ""
    exceptions = 0
    for event in events:
        kind = event.kind
        if kind in (Event.Kind.HANDED_TO_PERSON, Event.Kind.TAKEOVER) or (
            event.actor_kind == Event.Actor.PERSON and kind not in PERSON_EVENTS_EXCLUDED
        ):
            person = True
        if kind == Event.Kind.HANDED_TO_PERSON or (
            kind == Event.Kind.ACTION_EXPIRED and (event.data or {}).get("outcome") == "escalated"
        ):
            escalated = True
        if kind == Event.Kind.TAKEOVER:
            taken_over = True
        if kind in ERROR_EVENTS or (kind == Event.Kind.ACTION_FAILED and not (event.data or {}).get("transient")):
            errored = True
        if kind == Event.Kind.EXCEPTION:
            exceptions += 1
        if kind == Event.Kind.ABANDONED:
            abandoned_step = str((event.data or {}).get("step") or event.step)
    status = journey.status
    completed = status == Journey.Status.COMPLETED
    abandoned = status == Journey.Status.ABANDONED
    if status == Journey.Status.FAILED:
        errored = True
    resolution = (
        (journey.finished_at - journey.created_at).total_seconds() if completed and journey.finished_at else None
    )
    return JourneyFact(
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        customer_ref=journey.customer_ref,
        started_at=journey.created_at,
        day=utc_day(journey.created_at),
        status=status,
        finished_at=journey.finished_at,
        resolution_seconds=resolution,
        person_involved=person,
        contained=completed and not person,
        escalated=escalated,
        taken_over=taken_over,
        errored=errored,
        abandoned=abandoned,
        abandoned_step=abandoned_step if abandoned else "",
        exceptions=exceptions,
    )


def _step_facts(journey: Journey, events: list[Event]) -> list[StepFact]:
    runs: list[StepFact] = []
    open_runs: dict[str, StepFact] = {}
    for event in events:
        if event.kind == Event.Kind.STEP_STARTED:
            run = StepFact(
                journey_id=journey.pk,
                definition_id=journey.definition_id,
                day=utc_day(journey.created_at),
                step=event.step,
                started_at=event.at,
            )
            runs.append(run)
            open_runs[event.step] = run
        elif event.kind == Event.Kind.STEP_FINISHED and event.step in open_runs:
            run = open_runs.pop(event.step)
            run.seconds = (event.at - run.started_at).total_seconds()
    return runs


def _approver_id(event: Event) -> int | None:
    """The person who decided: the event's actor, else the username in ``data.approver``."""
    if event.actor_user_id:
        return event.actor_user_id
    username = (event.data or {}).get("approver")
    if not username:
        return None
    return get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()


def _decision_facts(journey: Journey, events: list[Event], proposals: Iterable[ProposedAction]) -> list[DecisionFact]:
    by_proposal: dict[int, list[Event]] = {}
    for event in events:
        if event.proposal_id:
            by_proposal.setdefault(event.proposal_id, []).append(event)
    facts = []
    for proposal in proposals:
        trail = by_proposal.get(proposal.pk, [])
        edited = any(e.kind == Event.Kind.ACTION_APPROVED and (e.data or {}).get("edited") for e in trail)
        final = next((e for e in trail if e.kind == Event.Kind.ACTION_REJECTED), None)
        outcome = DecisionFact.Outcome.REJECTED
        if final is None:
            final = next(
                (e for e in trail if e.kind == Event.Kind.ACTION_APPROVED and not (e.data or {}).get("partial")),
                None,
            )
            outcome = DecisionFact.Outcome.APPROVED
        if final is None:
            final = next((e for e in trail if e.kind == Event.Kind.ACTION_EXPIRED), None)
            outcome = DecisionFact.Outcome.EXPIRED
        if final is None:
            final = next(
                (
                    e
                    for e in trail
                    if e.kind == Event.Kind.ACTION_DECIDED
                    and (e.data or {}).get("effect") == ProposedAction.Effect.DENY
                ),
                None,
            )
            outcome = DecisionFact.Outcome.DENIED
        if final is None:
            continue
        by_person = outcome in (DecisionFact.Outcome.APPROVED, DecisionFact.Outcome.REJECTED)
        facts.append(
            DecisionFact(
                proposal_id=proposal.pk,
                journey_id=journey.pk,
                definition_id=journey.definition_id,
                step=proposal.step,
                rule=proposal.decision_rule,
                action=proposal.action_type.key,
                outcome=outcome,
                edited=edited and outcome == DecisionFact.Outcome.APPROVED,
                approver_id=_approver_id(final) if by_person else None,
                amount=proposal.amount,
                proposed_at=proposal.created_at,
                decided_at=final.at,
                day=utc_day(final.at),
                latency_seconds=(final.at - proposal.created_at).total_seconds() if by_person else None,
            )
        )
    return facts


def _same_customer_journeys(keys: set[tuple[str, int]], low: datetime, high: datetime) -> dict:
    """(customer, definition) → [(created_at, pk)] of the journeys started between low and high."""
    found: dict[tuple[str, int], list[tuple[datetime, int]]] = defaultdict(list)
    if not keys:
        return found
    match = Q()
    for customer_ref, definition_id in keys:
        match |= Q(customer_ref=customer_ref, definition_id=definition_id)
    rows = Journey.objects.filter(match, created_at__gte=low, created_at__lte=high).values_list(
        "customer_ref", "definition_id", "created_at", "pk"
    )
    for customer_ref, definition_id, created_at, pk in rows:
        found[(customer_ref, definition_id)].append((created_at, pk))
    return found


def _mark_contacts(facts: list[JourneyFact]) -> None:
    """Set repeat_contact / first_contact_resolved from the customer's other journeys."""
    if not facts:
        return
    others = _same_customer_journeys(
        {(f.customer_ref, f.definition_id) for f in facts},
        min(f.started_at for f in facts) - REPEAT_WINDOW,
        max(f.started_at for f in facts) + REPEAT_WINDOW,
    )
    for fact in facts:
        me = (fact.started_at, fact.journey_id)  # ties on the start time are broken by id
        around = others.get((fact.customer_ref, fact.definition_id), [])
        fact.repeat_contact = any(o < me and o[0] >= fact.started_at - REPEAT_WINDOW for o in around)
        came_back = any(o > me and o[0] <= fact.started_at + REPEAT_WINDOW for o in around)
        fact.first_contact_resolved = fact.status == Journey.Status.COMPLETED and not came_back


def _neighbours(journey_ids: set[int]) -> set[int]:
    """Journeys whose repeat/first-contact facts a change to these journeys can move."""
    related: set[int] = set()
    ids = sorted(journey_ids)
    for start in range(0, len(ids), BATCH):
        rows = list(
            Journey.objects.filter(pk__in=ids[start : start + BATCH]).values_list(
                "customer_ref", "definition_id", "created_at"
            )
        )
        if not rows:
            continue
        others = _same_customer_journeys(
            {(c, d) for c, d, _ in rows},
            min(r[2] for r in rows) - REPEAT_WINDOW,
            max(r[2] for r in rows) + REPEAT_WINDOW,
        )
        for customer_ref, definition_id, created_at in rows:
            related.update(
                pk
                for when, pk in others.get((customer_ref, definition_id), [])
                if abs(when - created_at) <= REPEAT_WINDOW
            )
    return related


def refresh_journeys(journey_ids: Iterable[int]) -> set[tuple[int, date]]:
    """Recompute the facts of these journeys; returns the (definition, day) pairs they touch,
    before and after, so their daily counters can be recomputed. Call inside a transaction."""
    touched: set[tuple[int, date]] = set()
    ids = sorted(set(journey_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        touched.update(JourneyFact.objects.filter(journey_id__in=chunk).values_list("definition_id", "day"))
        touched.update(DecisionFact.objects.filter(journey_id__in=chunk).values_list("definition_id", "day"))
        journeys = list(Journey.objects.filter(pk__in=chunk))
        events_by_journey: dict[int, list[Event]] = {}
        for event in Event.objects.filter(journey_id__in=chunk).order_by("id"):
            events_by_journey.setdefault(event.journey_id, []).append(event)
        proposals_by_journey: dict[int, list[ProposedAction]] = {}
        for proposal in ProposedAction.objects.filter(journey_id__in=chunk).select_related("action_type"):
            proposals_by_journey.setdefault(proposal.journey_id, []).append(proposal)
        journey_facts, step_facts, decision_facts = [], [], []
        for journey in journeys:
            events = events_by_journey.get(journey.pk, [])
            journey_facts.append(_journey_fact(journey, events))
            step_facts.extend(_step_facts(journey, events))
            decision_facts.extend(_decision_facts(journey, events, proposals_by_journey.get(journey.pk, [])))
        _mark_contacts(journey_facts)
        JourneyFact.objects.filter(journey_id__in=chunk).delete()
        StepFact.objects.filter(journey_id__in=chunk).delete()
        DecisionFact.objects.filter(journey_id__in=chunk).delete()
        JourneyFact.objects.bulk_create(journey_facts)
        StepFact.objects.bulk_create(step_facts)
        DecisionFact.objects.bulk_create(decision_facts)
        touched.update((f.definition_id, f.day) for f in journey_facts)
        touched.update((f.definition_id, f.day) for f in decision_facts)
    return touched


def refresh_days(pairs: Iterable[tuple[int, date]]) -> None:
    """Recompute the daily counters of these (definition, day) pairs from the facts."""
    for definition_id, day in sorted(set(pairs)):
        counters = daily_counters(
            JourneyFact.objects.filter(definition_id=definition_id, day=day),
            DecisionFact.objects.filter(definition_id=definition_id, day=day),
        )
        if not any(counters.values()):
            DailyRollup.objects.filter(definition_id=definition_id, day=day).delete()
            continue
        DailyRollup.objects.update_or_create(definition_id=definition_id, day=day, defaults=counters)


def rollup_refresh(*, now: datetime | None = None) -> dict[str, Any]:
    """Bring the roll-ups up to date with the event log. Safe to run concurrently: a second run
    finds the state row locked and returns at once."""
    started = time.monotonic()
    now = now or timezone.now()
    with transaction.atomic():
        RollupState.objects.get_or_create(name=STATE_NAME)
        state = RollupState.objects.select_for_update(skip_locked=True).filter(name=STATE_NAME).first()
        if state is None:
            return {"skipped": True}
        high = Event.objects.aggregate(high=Max("id"))["high"] or 0
        since = (state.last_run_at - timedelta(seconds=RESCAN_SECONDS)) if state.last_run_at else None
        changed = Q(id__gt=state.last_event_id, id__lte=high)
        if since is not None:
            changed |= Q(at__gte=since, id__lte=high)
        dirty = set(Event.objects.filter(changed).values_list("journey_id", flat=True).distinct())
        dirty |= _neighbours(dirty) if dirty else set()
        touched = refresh_journeys(dirty)
        refresh_days(touched)
        state.last_event_id = high
        state.last_run_at = now
        state.last_journeys = len(dirty)
        state.last_duration_ms = int((time.monotonic() - started) * 1000)
        state.save()
    return {"journeys": len(dirty), "days": len(touched), "watermark": high}


# --- the full rebuild, set-based ------------------------------------------------------------
#
# On PostgreSQL the rebuild computes the same facts as ``refresh_journeys`` in four INSERT …
# SELECT statements (one pass over the event log for the journey facts, one over step events,
# one over decision events, then the daily counters from the facts) instead of loading every
# journey's events into Python. The incremental refresh keeps the Python functions above; a test
# proves both give the same rows. ``_truthy`` is Python's truth of a JSON value.


def _truthy(value: str) -> str:
    return (
        f"({value} IS NOT NULL AND {value} NOT IN "
        "('null'::jsonb, 'false'::jsonb, '0'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{}'::jsonb))"
    )


def _table(model: Any) -> str:
    return model._meta.db_table


def _rebuild_postgresql(cursor: Any) -> None:
    K = Event.Kind
    journey, event, proposal = _table(Journey), _table(Event), _table(ProposedAction)
    action_type = _table(ProposedAction._meta.get_field("action_type").related_model)
    window = REPEAT_WINDOW
    cursor.execute(
        f"""
        INSERT INTO {_table(JourneyFact)} (journey_id, definition_id, customer_ref, started_at, day, status,
            finished_at, resolution_seconds, person_involved, contained, escalated, taken_over, errored,
            abandoned, abandoned_step, repeat_contact, first_contact_resolved, exceptions)
        WITH life AS (
            SELECT journey_id,
                bool_or(kind IN (%(handed)s, %(takeover)s)
                        OR (actor_kind = %(person)s AND kind <> %(annotation)s)) AS person,
                bool_or(kind = %(handed)s
                        OR (kind = %(expired)s AND data->>'outcome' = 'escalated')) AS escalated,
                bool_or(kind = %(takeover)s) AS taken_over,
                bool_or(kind IN (%(turn_failed)s, %(quarantined)s)
                        OR (kind = %(action_failed)s AND NOT {_truthy("data->'transient'")})) AS errored,
                count(*) FILTER (WHERE kind = %(exception)s) AS exceptions,
                (array_agg(CASE WHEN {_truthy("data->'step'")} THEN data->>'step' ELSE step END
                           ORDER BY id DESC) FILTER (WHERE kind = %(abandoned_event)s))[1] AS abandoned_step
            FROM {event} GROUP BY journey_id
        ), around AS (
            SELECT id, lag(created_at) OVER same AS before, lead(created_at) OVER same AS after
            FROM {journey}
            WINDOW same AS (PARTITION BY customer_ref, definition_id ORDER BY created_at, id)
        )
        SELECT j.id, j.definition_id, j.customer_ref, j.created_at, (j.created_at AT TIME ZONE 'UTC')::date,
            j.status, j.finished_at,
            CASE WHEN j.status = %(completed)s AND j.finished_at IS NOT NULL
                 THEN extract(epoch FROM j.finished_at - j.created_at)::float8 END,
            coalesce(l.person, false),
            j.status = %(completed)s AND NOT coalesce(l.person, false),
            coalesce(l.escalated, false),
            coalesce(l.taken_over, false),
            coalesce(l.errored, false) OR j.status = %(failed)s,
            j.status = %(abandoned)s,
            CASE WHEN j.status = %(abandoned)s THEN coalesce(l.abandoned_step, '') ELSE '' END,
            coalesce(a.before >= j.created_at - %(window)s, false),
            j.status = %(completed)s AND NOT coalesce(a.after <= j.created_at + %(window)s, false),
            coalesce(l.exceptions, 0)
        FROM {journey} j LEFT JOIN life l ON l.journey_id = j.id JOIN around a ON a.id = j.id
        """,
        {
            "handed": K.HANDED_TO_PERSON,
            "takeover": K.TAKEOVER,
            "person": Event.Actor.PERSON,
            "annotation": K.ANNOTATION,
            "expired": K.ACTION_EXPIRED,
            "turn_failed": K.TURN_FAILED,
            "quarantined": K.TURN_QUARANTINED,
            "action_failed": K.ACTION_FAILED,
            "exception": K.EXCEPTION,
            "abandoned_event": K.ABANDONED,
            "completed": Journey.Status.COMPLETED,
            "failed": Journey.Status.FAILED,
            "abandoned": Journey.Status.ABANDONED,
            "window": window,
        },
    )
    # A step run ends at the first "finished" of the same step after it, unless the step was
    # started again before that (the new run replaces the open one, as in ``_step_facts``).
    cursor.execute(
        f"""
        INSERT INTO {_table(StepFact)} (journey_id, definition_id, day, step, started_at, seconds)
        SELECT r.journey_id, j.definition_id, (j.created_at AT TIME ZONE 'UTC')::date, r.step, r.at,
            CASE WHEN r.next_kind = %(finished)s THEN extract(epoch FROM r.next_at - r.at)::float8 END
        FROM (
            SELECT journey_id, step, kind, at,
                lead(kind) OVER run AS next_kind, lead(at) OVER run AS next_at
            FROM {event} WHERE kind IN (%(started)s, %(finished)s)
            WINDOW run AS (PARTITION BY journey_id, step ORDER BY id)
        ) r JOIN {journey} j ON j.id = r.journey_id
        WHERE r.kind = %(started)s
        """,
        {"started": K.STEP_STARTED, "finished": K.STEP_FINISHED},
    )
    # A proposal's outcome: its first rejection, else its first whole approval, else its first
    # expiry, else its first policy denial (``_decision_facts``); none of them, no fact.
    cursor.execute(
        f"""
        INSERT INTO {_table(DecisionFact)} (proposal_id, journey_id, definition_id, step, rule, action,
            outcome, edited, approver_id, amount, proposed_at, decided_at, day, latency_seconds)
        WITH trail AS (
            SELECT e.proposal_id,
                bool_or(e.kind = %(approved)s AND {_truthy("e.data->'edited'")}) AS edited,
                min(e.id) FILTER (WHERE e.kind = %(rejected)s) AS rejected,
                min(e.id) FILTER (WHERE e.kind = %(approved)s AND NOT {_truthy("e.data->'partial'")}) AS approved,
                min(e.id) FILTER (WHERE e.kind = %(expired)s) AS expired,
                min(e.id) FILTER (WHERE e.kind = %(decided)s AND e.data->>'effect' = %(deny)s) AS denied
            FROM {event} e JOIN {proposal} p ON p.id = e.proposal_id AND p.journey_id = e.journey_id
            WHERE e.proposal_id IS NOT NULL
            GROUP BY e.proposal_id
        ), settled AS (
            SELECT proposal_id, edited, coalesce(rejected, approved, expired, denied) AS final_id,
                CASE WHEN rejected IS NOT NULL THEN %(o_rejected)s
                     WHEN approved IS NOT NULL THEN %(o_approved)s
                     WHEN expired IS NOT NULL THEN %(o_expired)s
                     ELSE %(o_denied)s END AS outcome
            FROM trail WHERE coalesce(rejected, approved, expired, denied) IS NOT NULL
        )
        SELECT p.id, p.journey_id, j.definition_id, p.step, p.decision_rule, t.key, s.outcome,
            s.edited AND s.outcome = %(o_approved)s,
            CASE WHEN s.outcome IN (%(o_approved)s, %(o_rejected)s)
                 THEN coalesce(f.actor_user_id,
                               (SELECT u.id FROM {_table(get_user_model())} u
                                WHERE u.username = f.data->>'approver' AND f.data->>'approver' <> ''
                                ORDER BY u.id LIMIT 1)) END,
            NULL, p.created_at, f.at, (f.at AT TIME ZONE 'UTC')::date,
            CASE WHEN s.outcome IN (%(o_approved)s, %(o_rejected)s)
                 THEN extract(epoch FROM f.at - p.created_at)::float8 END
        FROM settled s
        JOIN {proposal} p ON p.id = s.proposal_id
        JOIN {journey} j ON j.id = p.journey_id
        JOIN {action_type} t ON t.id = p.action_type_id
        JOIN {event} f ON f.id = s.final_id
        """,
        {
            "approved": K.ACTION_APPROVED,
            "rejected": K.ACTION_REJECTED,
            "expired": K.ACTION_EXPIRED,
            "decided": K.ACTION_DECIDED,
            "deny": ProposedAction.Effect.DENY,
            "o_approved": DecisionFact.Outcome.APPROVED,
            "o_rejected": DecisionFact.Outcome.REJECTED,
            "o_expired": DecisionFact.Outcome.EXPIRED,
            "o_denied": DecisionFact.Outcome.DENIED,
        },
    )
    _fill_amounts()
    cursor.execute(
        f"""
        INSERT INTO {_table(DailyRollup)} (definition_id, day, {", ".join(DailyRollup.COUNTERS)})
        WITH j AS (
            SELECT definition_id, day, count(*) AS journeys,
                count(*) FILTER (WHERE status = %(completed)s) AS completed,
                count(*) FILTER (WHERE contained) AS contained,
                count(*) FILTER (WHERE escalated) AS escalated,
                count(*) FILTER (WHERE taken_over) AS taken_over,
                count(*) FILTER (WHERE abandoned) AS abandoned,
                count(*) FILTER (WHERE errored) AS errored,
                count(*) FILTER (WHERE repeat_contact) AS repeat_contacts,
                count(*) FILTER (WHERE first_contact_resolved) AS first_contact_resolved
            FROM {_table(JourneyFact)} GROUP BY definition_id, day
        ), d AS (
            SELECT definition_id, day,
                count(*) FILTER (WHERE outcome = %(o_approved)s) AS approvals,
                count(*) FILTER (WHERE outcome = %(o_rejected)s) AS rejections,
                count(*) FILTER (WHERE outcome = %(o_approved)s AND edited) AS edited_approvals,
                count(*) FILTER (WHERE outcome = %(o_expired)s) AS expirations,
                count(*) FILTER (WHERE outcome = %(o_denied)s) AS policy_denials
            FROM {_table(DecisionFact)} GROUP BY definition_id, day
        )
        SELECT coalesce(j.definition_id, d.definition_id), coalesce(j.day, d.day),
            coalesce(j.journeys, 0), coalesce(j.completed, 0), coalesce(j.contained, 0),
            coalesce(j.escalated, 0), coalesce(j.taken_over, 0), coalesce(j.abandoned, 0),
            coalesce(j.errored, 0), coalesce(j.repeat_contacts, 0), coalesce(j.first_contact_resolved, 0),
            coalesce(d.approvals, 0) + coalesce(d.rejections, 0), coalesce(d.approvals, 0),
            coalesce(d.rejections, 0), coalesce(d.edited_approvals, 0), coalesce(d.expirations, 0),
            coalesce(d.policy_denials, 0)
        FROM j FULL JOIN d ON d.definition_id = j.definition_id AND d.day = j.day
        """,
        {
            "completed": Journey.Status.COMPLETED,
            "o_approved": DecisionFact.Outcome.APPROVED,
            "o_rejected": DecisionFact.Outcome.REJECTED,
            "o_expired": DecisionFact.Outcome.EXPIRED,
            "o_denied": DecisionFact.Outcome.DENIED,
        },
    )


def _fill_amounts() -> None:
    """Each decided proposal's amount, read by ``ProposedAction.amount`` itself (a parameter
    parsed as Python parses a Decimal), written in batches."""
    decided = DecisionFact.objects.values_list("proposal_id", flat=True)
    proposals = (
        ProposedAction.objects.filter(pk__in=decided, action_type__money_param__gt="")
        .select_related("action_type")
        .only("pk", "params", "action_type__money_param")
    )
    facts = [
        DecisionFact(proposal_id=proposal.pk, amount=proposal.amount)
        for proposal in proposals.iterator(chunk_size=2000)
        if proposal.amount is not None
    ]
    DecisionFact.objects.bulk_update(facts, ["amount"], batch_size=1000)


@transaction.atomic
def rollup_rebuild() -> dict[str, Any]:
    """Throw the roll-ups away and recompute them from the whole record: set-based on
    PostgreSQL, journey by journey in batches elsewhere (the embedded SQLite demo)."""
    JourneyFact.objects.all().delete()
    StepFact.objects.all().delete()
    DecisionFact.objects.all().delete()
    DailyRollup.objects.all().delete()
    high = Event.objects.aggregate(high=Max("id"))["high"] or 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _rebuild_postgresql(cursor)
        journeys = Journey.objects.count()
        days = DailyRollup.objects.count()
    else:
        ids = list(Journey.objects.values_list("pk", flat=True))
        touched = refresh_journeys(ids)
        refresh_days(touched)
        journeys, days = len(ids), len(touched)
    RollupState.objects.update_or_create(
        name=STATE_NAME,
        defaults={"last_event_id": high, "last_run_at": timezone.now(), "last_journeys": journeys},
    )
    return {"journeys": journeys, "days": days}


def rollup_state() -> RollupState | None:
    return RollupState.objects.filter(name=STATE_NAME).first()
