"""The demo's automated desk worker: a clearly named service account that decides the routine
approvals after they have waited a while, and settles the routine items on the desks, so the demo
bank reaches a steady state with nobody logged in. It leaves anything unusual for a person: a
refund whose amount does not match the charge or fee it is for, a person's own proposal, anything
it may not approve; on the desks, anything but the reasons in ``DESK_PLAYBOOK``.

It works through the same services as a person (``proposal_approve``; ``journey_claim`` and
``journey_hand_back``): its own team grants and limits apply, and every decision, claim and
hand-back is an audited event by ``demo-desk``. Demo only; ``make run`` starts it unless
``DEMO_DESK=off``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.utils import timezone

from journeys.control import desk_journeys, desk_order, journey_claim, journey_hand_back
from journeys.errors import JourneyError
from journeys.models import Event, ExceptionKind, Journey, ProposedAction

from .access import decidable_proposals_for
from .services import DecisionError, proposal_approve

DESK_USERNAME = "demo-desk"
DESK_NAME = ("Demo desk", "(automated)")
DESK_TEAMS = ["Cards team", "Servicing team"]


# The desk items the worker settles, by why the agent handed the journey over, and the note it
# leaves the agent when it hands back. It acts on a journey at most once: an item that comes back
# to the desk after its hand-back is a person's.
DESK_PLAYBOOK = {
    ExceptionKind.STEP_FAILED: "The failure was transient (a timeout); try the step again.",
    ExceptionKind.LOW_CONFIDENCE: "Checked: the classification matches what the customer described; go on.",
}


@dataclass
class DeskRound:
    approved: int = 0
    left_for_a_person: int = 0
    handed_back: int = 0
    desk_left: int = 0


def desk_user():
    """The desk's service account: no password (it never logs in), a member of the demo teams."""
    user, created = get_user_model().objects.get_or_create(
        username=DESK_USERNAME, defaults={"first_name": DESK_NAME[0], "last_name": DESK_NAME[1]}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    for name in DESK_TEAMS:
        group = Group.objects.filter(name=name).first()
        if group is not None:
            user.groups.add(group)
    return user


def _amount(value) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        return None


def is_routine(proposal: ProposedAction) -> bool:
    """Whether a careful clerk would approve this without a second look."""
    if proposal.proposed_by_user_id is not None:
        return False  # a colleague's proposal: a person decides it
    if proposal.action_type.key != "issue_refund":
        return proposal.action_type.key in {"order_card", "update_address"}
    facts = (proposal.journey.context or {}).get("facts", {})
    expected = (facts.get("transaction") or facts.get("fee") or {}).get("amount")
    asked = _amount(proposal.params.get("amount"))
    return asked is not None and expected is not None and asked == _amount(expected)


def desk_round(user, *, older_than: timedelta, limit: int = 20) -> DeskRound:
    """Approve the routine pending proposals that have waited at least ``older_than``."""
    done = DeskRound()
    cutoff = timezone.now() - older_than
    candidates = (
        decidable_proposals_for(user)
        .pending()
        .filter(created_at__lte=cutoff)
        .exclude(approvals__approver=user)
        .select_related("action_type", "journey")
        .order_by("created_at", "pk")[:limit]
    )
    for proposal in candidates:
        if not is_routine(proposal):
            done.left_for_a_person += 1
            continue
        try:
            proposal_approve(proposal_id=proposal.pk, user=user, reason="Routine: matches the request.")
        except DecisionError:
            done.left_for_a_person += 1  # over its limit, decided meanwhile, or not its to decide
            continue
        done.approved += 1
    return done


def _settles(journey: Journey) -> bool:
    """Whether the playbook applies: a known reason and, for a low-confidence classification, one
    that matches the kind of dispute the customer described."""
    if journey.desk_reason not in DESK_PLAYBOOK:
        return False
    if journey.desk_reason == ExceptionKind.LOW_CONFIDENCE:
        context = journey.context or {}
        described = (context.get("request") or {}).get("kind")
        return bool(described) and described == (context.get("facts") or {}).get("classification")
    return True


def desk_items_round(user, *, older_than: timedelta, limit: int = 10) -> DeskRound:
    """Claim the desk items that waited at least ``older_than`` and that ``DESK_PLAYBOOK`` settles,
    and hand each back to its agent with the playbook's note (the agent continues at once). Claim
    and hand-back happen in one transaction: an item someone else claimed meanwhile is theirs."""
    done = DeskRound()
    cutoff = timezone.now() - older_than
    latest_reason = (
        Event.objects.filter(journey=OuterRef("pk"), kind=Event.Kind.HANDED_TO_PERSON)
        .order_by("-pk")
        .annotate(reason=KT("data__exception_kind"))
        .values("reason")[:1]
    )
    handed_back_before = Event.objects.filter(kind=Event.Kind.HAND_BACK, actor_user=user).values("journey_id")
    items = desk_order(
        desk_journeys(user)
        .filter(controller_user__isnull=True, state_changed_at__lte=cutoff)
        .exclude(pk__in=handed_back_before)
        .annotate(desk_reason=Subquery(latest_reason, output_field=CharField()))
        .filter(desk_reason__in=list(DESK_PLAYBOOK))
    )[:limit]
    for journey in items:
        if not _settles(journey):
            done.desk_left += 1
            continue
        try:
            with transaction.atomic():
                journey_claim(journey_id=journey.pk, user=user)
                journey_hand_back(journey_id=journey.pk, user=user, note=DESK_PLAYBOOK[journey.desk_reason])
        except JourneyError:
            done.desk_left += 1  # claimed by a person meanwhile, or no longer on the desk
            continue
        done.handed_back += 1
    return done
