"""The policy engine: ``evaluate(proposal) -> Decision``, the answer to ``journeys.policy.decide``.

How a decision is made (``docs/policy.md`` is the long version):

1. Every enabled scope whose target matches the proposal (action type, journey definition,
   agent or agent group — a scope naming an agent or group never matches a person's proposal)
   and whose conditions all hold on the parameters is a candidate.
2. The most specific candidate wins. Specificity compares, in this order: a named agent beats
   an agent group beats anyone; a named definition beats any; a named action type beats any;
   a rule with conditions beats one without. At equal specificity the stricter effect wins
   (deny > two approvals > one approval > allow); then the older rule (lower id).
3. No candidate: deny.
4. Unless the rule denies, every enabled cumulative limit on the action is checked under a row
   lock: when the proposal would take the window's total past the maximum, the limit's effect
   applies if it is stricter. An allowed proposal is counted at once; an approved one when a
   person approves it (``limits_consume``).

Runs inside the transaction that holds the journey's row lock; the counter locks are held to
its end, so concurrent proposals of different journeys for the same customer are counted one
after the other.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from journeys.bounds import money_owner
from journeys.db import OpeningRead, register_opening_read, still_queued, transaction_marker
from journeys.events import current_together
from journeys.models import ProposedAction
from journeys.policy import Decision

from .models import (
    ApprovalRequest,
    CumulativeLimit,
    LimitCounter,
    LimitUsage,
    PermissionScope,
    ReviewSample,
)
from .models.scopes import STRICTNESS, OnTimeout, condition_text

Effect = ProposedAction.Effect
NO_RULE = "no matching rule"
REQUIRED_APPROVALS = {Effect.REQUIRE_APPROVAL: 1, Effect.REQUIRE_TWO_APPROVALS: 2}


@dataclass(frozen=True)
class Verdict:
    """The engine's full answer: the decision plus what produced it (for services and previews)."""

    decision: Decision
    scope: PermissionScope | None
    limit: CumulativeLimit | None = None


def rules_version() -> int:
    """The version of the scope rules in force: the id of the latest change to any scope or
    cumulative limit (every change writes one ``ScopeChange``), 0 before the first."""
    from .models import ScopeChange

    return ScopeChange.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- the enabled rules, kept per process ------------------------------------------------------
#
# Every proposal is judged against the enabled scopes and limits. Rather than reading them for
# each proposal, a process keeps them with the token of ``RulesVersion`` they were read under,
# and reads one short row per proposal to learn whether they still hold: database triggers
# change the token in the same transaction as any write to a scope or a limit, so the token a
# statement sees and the rules it would see are always of the same commit. The same statement
# reads the provenance's ``rules_version`` (the latest ``ScopeChange``).


@dataclass(frozen=True)
class EnabledRules:
    token: str | None
    scopes: tuple[PermissionScope, ...]
    limits: tuple[CumulativeLimit, ...]
    version: int  # ``rules_version()`` as of the same statement


_kept: EnabledRules | None = None
# An agent's turn that proposes reads the rules state in the round trip that locks its journey
# (``journeys.db.OpeningRead``) and keeps it in its phase's stash under this name.
_TURN_STATE = "review.rules_state"


def _rules_state_sql() -> str:
    from .models import RulesVersion, ScopeChange

    return (
        f"SELECT (SELECT token FROM {RulesVersion._meta.db_table} WHERE id = 1), "
        f"(SELECT MAX(id) FROM {ScopeChange._meta.db_table})"
    )


def _read_rules_state() -> tuple[str | None, int]:
    """The rules token (None when its row is missing: nothing is kept then) and the latest
    ``ScopeChange`` id, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_rules_state_sql())
        token, version = cursor.fetchone()
    return token, version or 0


def _rules_state() -> tuple[str | None, int]:
    """The rules state read with the lock of this phase's agent turn, else read now."""
    group = current_together()
    held = group.stash.get(_TURN_STATE) if group is not None else None
    return held if held is not None else _read_rules_state()


def _turn_rules_statement(journey_id: int, turn: Any) -> list[tuple[str, list]] | None:
    return [(_rules_state_sql(), [])] if turn is not None and turn.proposals else None


def _keep_turn_rules(journey_id: int, rows: list[tuple], stash: dict[str, Any]) -> None:
    token, version = rows[0]
    stash[_TURN_STATE] = (token, version or 0)


register_opening_read(OpeningRead(_turn_rules_statement, _keep_turn_rules))


def enabled_rules(proposal: ProposedAction | None = None) -> EnabledRules:
    """The enabled scopes and limits in force now, each in id order. Held on ``proposal`` for
    the rest of the transaction: its judgement and the judgement's effects see the same rules."""
    global _kept
    held = getattr(proposal, "_enabled_rules", None) if proposal is not None else None
    if held is not None and still_queued(held[1]):
        return held[0]
    token, version = _rules_state()
    kept = _kept
    if kept is None or token is None or kept.token != token:
        scopes = tuple(PermissionScope.objects.enabled().order_by("pk"))
        limits = tuple(CumulativeLimit.objects.filter(is_enabled=True).order_by("pk"))
        # Kept only when no change committed while they were read (the token did not move).
        unchanged = token is not None and _read_rules_state()[0] == token
        kept = EnabledRules(token=token if unchanged else None, scopes=scopes, limits=limits, version=version)
        if unchanged:
            _kept = kept
    elif kept.version != version:
        kept = EnabledRules(token=kept.token, scopes=kept.scopes, limits=kept.limits, version=version)
    if proposal is not None:
        proposal._enabled_rules = (kept, transaction_marker())
    return kept


def judged_rules_version(proposal: ProposedAction) -> int:
    """The ``rules_version`` the proposal was judged under in this transaction (read with the
    rules), or the current one."""
    held = getattr(proposal, "_enabled_rules", None)
    if held is not None and still_queued(held[1]):
        return held[0].version
    return rules_version()


# --- matching -------------------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return _boolish(a) is not None and _boolish(a) == _boolish(b)
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return str(a) == str(b)


def _boolish(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}.get(text)


def condition_holds(condition: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether one condition holds. A parameter the proposal does not carry satisfies only the
    negative operators (``!=``, ``not in``): "premium ≠ true" holds when premium is absent."""
    op, expected = condition.get("op"), condition.get("value")
    name = condition.get("param")
    if name not in params:
        return op in ("!=", "not in")
    actual = params[name]
    if op in ("<", "<=", ">", ">="):
        a, b = _number(actual), _number(expected)
        if a is None or b is None:
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "==":
        return _same(actual, expected)
    if op == "!=":
        return not _same(actual, expected)
    if op in ("in", "not in"):
        options = expected if isinstance(expected, list) else [expected]
        found = any(_same(actual, option) for option in options)
        return found if op == "in" else not found
    return False


def _targets(scope: PermissionScope, proposal: ProposedAction) -> bool:
    if scope.action_type_id is not None and scope.action_type_id != proposal.action_type_id:
        return False
    if scope.definition_id is not None and scope.definition_id != proposal.journey.definition_id:
        return False
    agent = proposal.proposed_by_agent
    if scope.agent_id is not None and (agent is None or agent.pk != scope.agent_id):
        return False
    return not (scope.agent_group and (agent is None or agent.group != scope.agent_group))


def specificity(scope: PermissionScope) -> tuple[int, int, int, int]:
    agent_level = 2 if scope.agent_id else (1 if scope.agent_group else 0)
    return (
        agent_level,
        int(scope.definition_id is not None),
        int(scope.action_type_id is not None),
        int(bool(scope.conditions)),
    )


def winning_scope(
    proposal: ProposedAction, params: dict[str, Any], scopes: Iterable[PermissionScope]
) -> PermissionScope | None:
    candidates = [
        s for s in scopes if _targets(s, proposal) and all(condition_holds(c, params) for c in s.conditions or [])
    ]
    if not candidates:
        return None
    # Most specific first; then the stricter effect; then the older rule.
    # An unsaved rule (the scope editor's preview) counts as the newest.
    return min(
        candidates,
        key=lambda s: (
            tuple(-x for x in specificity(s)),
            -STRICTNESS[s.effect],
            s.pk if s.pk is not None else float("inf"),
        ),
    )


def candidate_scopes(proposal: ProposedAction) -> list[PermissionScope]:
    action_type, definition = proposal.action_type_id, proposal.journey.definition_id
    return [
        scope
        for scope in enabled_rules(proposal).scopes
        if scope.action_type_id in (None, action_type) and scope.definition_id in (None, definition)
    ]


# --- explanations ---------------------------------------------------------------------------


def _what(proposal: ProposedAction, params: dict[str, Any]) -> str:
    name = proposal.action_type.name
    money = proposal.action_type.money_param
    if money and params.get(money) not in (None, ""):
        return f"{name} of {params[money]}"
    return name


VERDICT_WORDS = {
    Effect.ALLOW: "is allowed",
    Effect.REQUIRE_APPROVAL: "needs approval",
    Effect.REQUIRE_TWO_APPROVALS: "needs two approvals",
    Effect.DENY: "is denied",
}


def _explain_scope(proposal: ProposedAction, params: dict[str, Any], scope: PermissionScope | None) -> str:
    what = _what(proposal, params)
    if scope is None:
        return f"{what} is denied: no permission scope matches it, and no matching rule means deny."
    when = f" ({scope.conditions_text()})" if scope.conditions else ""
    return f"{what} {VERDICT_WORDS[scope.effect]}: rule '{scope.name}'{when}."


# --- cumulative limits ----------------------------------------------------------------------


def _customer(proposal: ProposedAction, params: dict[str, Any]) -> str:
    """The customer a proposal's money counts for: the owner of its destination account
    (``journeys.bounds.money_owner``), so no path can route money around a customer's limit."""
    return money_owner(proposal.action_type.key, params, proposal.journey.customer_ref)


def _subject_key(limit: CumulativeLimit, proposal: ProposedAction, params: dict[str, Any]) -> str | None:
    if limit.subject == CumulativeLimit.Subject.CUSTOMER:
        return f"customer:{_customer(proposal, params)}"
    if limit.subject == CumulativeLimit.Subject.PROPOSER:
        if proposal.proposed_by_agent_id:
            return f"agent:{proposal.proposed_by_agent_id}"
        if proposal.proposed_by_user_id:
            return f"user:{proposal.proposed_by_user_id}"
        return None
    return f"definition:{proposal.journey.definition_id}"


def _quantity(limit: CumulativeLimit, proposal: ProposedAction, params: dict[str, Any]) -> Decimal | None:
    if limit.measure == CumulativeLimit.Measure.COUNT:
        return Decimal(1)
    money = proposal.action_type.money_param
    return _number(params.get(money)) if money else None


def _limits_for(proposal: ProposedAction) -> list[CumulativeLimit]:
    """The enabled limits on the proposal's action (``enabled_rules``)."""
    action_type, definition = proposal.action_type_id, proposal.journey.definition_id
    return [
        limit
        for limit in enabled_rules(proposal).limits
        if limit.action_type_id == action_type and limit.definition_id in (None, definition)
    ]


def _lock_counter(limit: CumulativeLimit, subject_key: str, proposal: ProposedAction | None = None) -> LimitCounter:
    # INSERT … ON CONFLICT DO NOTHING, then SELECT … FOR UPDATE: the row exists for everyone and
    # exactly one transaction at a time holds it until it commits. The judgement of a proposal
    # and the counting of it run in one transaction: the second finds the row it already holds.
    key = (limit.pk, subject_key)
    held = getattr(proposal, "_held_counters", None) if proposal is not None else None
    if held and key in held:
        marker, counter = held[key]
        if still_queued(marker):
            return counter
        del held[key]  # that transaction, or the savepoint that took the lock, has ended
    LimitCounter.objects.bulk_create([LimitCounter(limit=limit, subject_key=subject_key)], ignore_conflicts=True)
    counter = LimitCounter.objects.select_for_update().get(limit=limit, subject_key=subject_key)
    # While the marker is queued, the transaction (or savepoint) that took the lock is open.
    marker = transaction_marker() if proposal is not None else None
    if marker is not None:
        if held is None:
            held = proposal._held_counters = {}
        held[key] = (marker, counter)
    return counter


def _used(counter: LimitCounter, limit: CumulativeLimit, proposal: ProposedAction) -> Decimal:
    since = timezone.now() - limit.window
    usage = LimitUsage.objects.filter(counter=counter, at__gte=since)
    if proposal.pk is not None:  # judged before it is written (``lifecycle.proposal.propose``), it has counted nowhere
        usage = usage.exclude(proposal=proposal)
    return usage.aggregate(total=Sum("quantity"))["total"] or Decimal(0)


def _check_limits(
    proposal: ProposedAction, params: dict[str, Any], *, lock: bool
) -> tuple[CumulativeLimit, str] | None:
    """Check every limit on the proposal: the strictest exceeded limit with its explanation, or
    None. With ``lock`` the counters stay locked until the caller's transaction ends."""
    worst: tuple[CumulativeLimit, str] | None = None
    keyed = []
    for limit in _limits_for(proposal):
        subject = _subject_key(limit, proposal, params)
        quantity = _quantity(limit, proposal, params)
        if subject is not None and quantity is not None:
            keyed.append((limit, subject, quantity))
    # A fixed lock order (limit, subject) keeps two proposals from deadlocking on two counters.
    for limit, subject, quantity in sorted(keyed, key=lambda item: (item[0].pk, item[1])):
        if lock:
            counter = _lock_counter(limit, subject, proposal)
            used = _used(counter, limit, proposal)
        else:
            counter = LimitCounter.objects.filter(limit=limit, subject_key=subject).first()
            used = _used(counter, limit, proposal) if counter else Decimal(0)
        stricter = worst is None or STRICTNESS[limit.effect_when_exceeded] > STRICTNESS[worst[0].effect_when_exceeded]
        if used + quantity > limit.maximum and stricter:
            shown_used = f"{used}" if limit.measure == CumulativeLimit.Measure.AMOUNT else f"{int(used)}"
            worst = (
                limit,
                f"{_what(proposal, params)} {VERDICT_WORDS[limit.effect_when_exceeded]}: "
                f"limit '{limit.name}' allows {limit.describe()} and {shown_used} is already "
                f"used for {_subject_label(limit, proposal, params)}.",
            )
    return worst


def _subject_label(limit: CumulativeLimit, proposal: ProposedAction, params: dict[str, Any]) -> str:
    if limit.subject == CumulativeLimit.Subject.CUSTOMER:
        return f"customer {_customer(proposal, params)}"
    if limit.subject == CumulativeLimit.Subject.PROPOSER:
        return proposal.proposer_label
    return proposal.journey.definition.name


def limits_consume(proposal: ProposedAction) -> None:
    """Count an allowed or approved proposal against its limits (idempotent per proposal).
    Caller is inside a transaction; the counter rows stay locked until it ends."""
    _consume(proposal, proposal.params)


def _consume(proposal: ProposedAction, params: dict[str, Any]) -> int:
    now = timezone.now()
    counted = 0
    for limit in _limits_for(proposal):
        subject = _subject_key(limit, proposal, params)
        quantity = _quantity(limit, proposal, params)
        if subject is None or quantity is None:
            continue
        counter = _lock_counter(limit, subject, proposal)
        LimitUsage.objects.bulk_create(
            [LimitUsage(counter=counter, proposal=proposal, quantity=quantity, at=now)], ignore_conflicts=True
        )
        LimitCounter.objects.filter(pk=counter.pk).update(last_used_at=now)
        counted += 1
    return counted


# --- the engine -----------------------------------------------------------------------------


def judge(
    proposal: ProposedAction,
    *,
    params: dict[str, Any] | None = None,
    scopes: Iterable[PermissionScope] | None = None,
    limits: bool = True,
    lock: bool = False,
) -> Verdict:
    """Decide ``proposal`` (optionally with other ``params``) without counting it anywhere.

    ``scopes`` replaces the enabled scopes (the preview of an edited rule); ``limits=False``
    skips the cumulative limits; ``lock=True`` creates and locks their counter rows (the real
    decision, inside the journey's transaction).
    """
    params = proposal.params if params is None else params
    scope = winning_scope(proposal, params, candidate_scopes(proposal) if scopes is None else scopes)
    effect = scope.effect if scope else Effect.DENY
    rule = scope.name if scope else NO_RULE
    explanation = _explain_scope(proposal, params, scope)
    exceeded_limit = None
    if limits and effect != Effect.DENY:
        worst = _check_limits(proposal, params, lock=lock)
        if worst and STRICTNESS[worst[0].effect_when_exceeded] > STRICTNESS[effect]:
            exceeded_limit = worst[0]
            effect, rule, explanation = worst[0].effect_when_exceeded, worst[0].name, worst[1]
    expires_at = None
    if effect in REQUIRED_APPROVALS:
        minutes = scope.approval_timeout_minutes if scope else _default_timeout()
        expires_at = timezone.now() + timedelta(minutes=minutes)
    decision = Decision(
        effect=effect,
        rule=rule,
        explanation=explanation,
        required_approvals=REQUIRED_APPROVALS.get(effect, 0),
        expires_at=expires_at,
    )
    return Verdict(decision=decision, scope=scope, limit=exceeded_limit)


def _default_timeout() -> int:
    return int(settings.HANDOFF.get("DEFAULT_APPROVAL_TIMEOUT_MINUTES", 60))


def proposer_user_id(proposal: ProposedAction) -> int | None:
    """The person behind a proposal: the proposing user, or the agent's service user."""
    if proposal.proposed_by_user_id:
        return proposal.proposed_by_user_id
    if proposal.proposed_by_agent_id:
        return proposal.proposed_by_agent.user_id
    return None


def evaluate(proposal: ProposedAction) -> Decision:
    """The policy engine behind ``journeys.policy.decide``: a pure judgement. Caller holds the
    journey lock; the counter rows it reads stay locked until the caller's transaction ends, so
    ``apply_decision`` counts against exactly what was judged."""
    return judge(proposal, lock=True).decision


def apply_decision(proposal: ProposedAction, decision: Decision, *, outcome: str) -> None:
    """The engine's side effects, applied by the lifecycle transition that reached ``outcome``:
    an auto-approved or approved proposal counts against its cumulative limits (an auto-approved
    one may be sampled for the after-the-fact review); a pending one opens its approval request
    (the rule's timeout, what happens then, who receives an escalation)."""
    Status = ProposedAction.Status
    if outcome in (Status.AUTO_APPROVED, Status.APPROVED):
        _consume(proposal, proposal.params)
    if outcome == Status.AUTO_APPROVED:
        share = float(settings.HANDOFF.get("REVIEW_SAMPLE_SHARE", 0))
        if not proposal.action_type.is_read_only and share > 0 and random.random() < share:
            # Once per proposal, in one statement (the proposal is its unique key).
            ReviewSample.objects.bulk_create([ReviewSample(proposal=proposal)], ignore_conflicts=True)
    elif outcome == Status.PENDING:
        scope = judge(proposal, limits=False).scope  # the rule whose timeout and escalation apply
        ApprovalRequest.objects.update_or_create(
            proposal=proposal,
            defaults={
                "scope": scope,
                "proposer_user_id": proposer_user_id(proposal),
                "timeout_minutes": scope.approval_timeout_minutes if scope else _default_timeout(),
                "on_timeout": scope.on_timeout if scope else OnTimeout.FALLBACK,
                # By id: the kept scope's team object is not refreshed when the team changes.
                "escalate_to_id": (scope.escalate_to_id or proposal.journey.definition.owning_team_id)
                if scope
                else None,
            },
        )


__all__ = [
    "NO_RULE",
    "Verdict",
    "apply_decision",
    "condition_holds",
    "condition_text",
    "enabled_rules",
    "evaluate",
    "judge",
    "judged_rules_version",
    "limits_consume",
    "proposer_user_id",
    "specificity",
    "winning_scope",
]
