"""The demo's automated desk worker: a clearly named service account that decides the routine
approvals after they have waited a while, so the demo bank reaches a steady state with nobody
logged in. It leaves anything unusual for a person: a refund whose amount does not match the
charge or fee it is for, a person's own proposal, anything it may not approve.

It decides through the same service as a person (``proposal_approve``): its own team grants and
limits apply, and every decision is an audited event by ``demo-desk``. Demo only; ``make run``
starts it unless ``DEMO_DESK=off``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from journeys.models import ProposedAction

from .access import decidable_proposals_for
from .services import DecisionError, proposal_approve

DESK_USERNAME = "demo-desk"
DESK_NAME = ("Demo desk", "(automated)")
DESK_TEAMS = ["Cards team", "Servicing team"]


@dataclass
class DeskRound:
    approved: int = 0
    left_for_a_person: int = 0


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
