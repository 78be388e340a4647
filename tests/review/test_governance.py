"""Maker-checker on governance: scope and limit changes, and grants that widen rights, take
effect only when a second admin approves them; narrowing changes apply at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from journeys.access import approval_limit_for, user_may
from journeys.models import ActionType, JourneyDefinition
from journeys.rights import Right
from review.forms import LimitForm, ScopeForm
from review.models import (
    AuditRecord,
    CumulativeLimit,
    GovernanceChange,
    PermissionScope,
    ScopeChange,
)
from review.models.audit import GOVERNANCE_CHAIN
from review.services.governance import (
    GovernanceError,
    governance_approve,
    governance_expire,
    governance_reject,
    limit_only_narrows,
    rule_submit,
    rule_toggle_submit,
    scope_only_narrows,
)

from .helpers import refund, start

S = GovernanceChange.Status
CARD_BLOCKS = "Card blocks per agent: 200 an hour"


def _scope_data(**overrides):
    data = {
        "name": "Refunds up to 80.00 are automatic",
        "description": "",
        "definition": "",
        "agent": "",
        "agent_group": "",
        "action_type": str(ActionType.objects.get(key="issue_refund").pk),
        "effect": "allow",
        "conditions_text": "amount <= 80.00",
        "approval_timeout_minutes": "15",
        "on_timeout": "fallback",
        "escalate_to": "",
        "reason": "More automatic refunds",
    }
    data.update(overrides)
    return data


def _limit_data(limit: CumulativeLimit, **overrides):
    data = {
        "name": limit.name,
        "definition": "",
        "action_type": str(limit.action_type_id),
        "measure": limit.measure,
        "subject": limit.subject,
        "maximum": str(limit.maximum),
        "window_minutes": str(limit.window_minutes),
        "effect_when_exceeded": limit.effect_when_exceeded,
        "reason": "Adjust",
    }
    data.update(overrides)
    return data


def _as_data(scope: PermissionScope, **overrides):
    """The scope's own form data, with ``overrides``."""
    fields = {
        "name": scope.name,
        "description": scope.description,
        "definition": str(scope.definition_id or ""),
        "agent": str(scope.agent_id or ""),
        "agent_group": scope.agent_group,
        "action_type": str(scope.action_type_id or ""),
        "effect": scope.effect,
        "conditions_text": "\n".join(f"{c['param']} {c['op']} {c['value']}" for c in scope.conditions or []),
        "approval_timeout_minutes": str(scope.approval_timeout_minutes),
        "on_timeout": scope.on_timeout,
        "escalate_to": str(scope.escalate_to_id or ""),
    }
    return _scope_data(**{**fields, **overrides})


def _submit_scope(actor, instance=None, **overrides):
    data = _as_data(instance, **overrides) if instance is not None else _scope_data(**overrides)
    form = ScopeForm(data, instance=instance)
    assert form.is_valid(), form.errors
    return rule_submit(form=form, actor=actor, reason=form.cleaned_data["reason"])


@pytest.fixture
def admin3(demo):
    user = get_user_model().objects.create_user("admin3", password="demo", is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get(name="Admins"))
    return user


# --- which changes wait ------------------------------------------------------------------------


def test_a_new_allowing_scope_waits_for_a_second_admin_and_the_maker_cannot_approve_it(admin_user, admin2):
    saved, entry, pending = _submit_scope(admin_user)
    assert saved is None and entry is None
    assert pending.status == S.PENDING and pending.maker == admin_user and pending.before is None
    assert pending.after["conditions"] == [{"param": "amount", "op": "<=", "value": "80.00"}]
    assert not PermissionScope.objects.filter(name="Refunds up to 80.00 are automatic").exists()
    with pytest.raises(GovernanceError, match="a second admin must approve it"):
        governance_approve(change_id=pending.pk, user=admin_user)
    assert GovernanceChange.objects.get(pk=pending.pk).status == S.PENDING

    governance_approve(change_id=pending.pk, user=admin2, reason="Agreed with risk")
    scope = PermissionScope.objects.get(name="Refunds up to 80.00 are automatic")
    change = GovernanceChange.objects.get(pk=pending.pk)
    assert (change.status, change.checker, change.decision_reason) == (S.APPROVED, admin2, "Agreed with risk")
    history = ScopeChange.objects.get(target_id=scope.pk)
    assert history.actor == admin2 and "requested by admin, approved by admin2" in history.reason
    mine = ["governance_requested", "scope_change", "governance_approved"]
    records = AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN, kind__in=mine).order_by("seq")
    kinds = list(records.values_list("kind", "actor_label"))
    assert kinds == [
        ("governance_requested", "admin"),
        ("scope_change", "admin2"),
        ("governance_approved", "admin2"),
    ]


def test_the_database_refuses_a_maker_as_checker(admin_user):
    _, _, pending = _submit_scope(admin_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        GovernanceChange.objects.filter(pk=pending.pk).update(
            status=S.APPROVED, checker=admin_user, decided_at=timezone.now()
        )


def test_changes_that_only_narrow_apply_at_once(admin_user):
    deny, entry, pending = _submit_scope(
        admin_user, name="No refunds over 900", effect="deny", conditions_text="amount > 900"
    )
    assert pending is None and deny.effect == "deny" and entry.actor == admin_user
    limit = CumulativeLimit.objects.get(name=CARD_BLOCKS)
    form = LimitForm(_limit_data(limit, maximum="150"), instance=limit)
    assert form.is_valid(), form.errors
    saved, entry, pending = rule_submit(form=form, actor=admin_user, reason="Fewer")
    assert pending is None and saved.maximum == Decimal("150") and entry is not None
    # A stricter effect on an existing rule narrows too.
    scope = PermissionScope.objects.get(name="Card blocks are allowed")
    _, entry, pending = _submit_scope(admin_user, instance=scope, effect="require_approval")
    assert pending is None and PermissionScope.objects.get(pk=scope.pk).effect == "require_approval"
    assert not GovernanceChange.objects.exists()


@pytest.mark.parametrize(
    ("before", "after", "narrows"),
    [
        (None, {"effect": "deny", "is_enabled": True}, True),
        (None, {"effect": "allow", "is_enabled": True}, False),
        (None, {"effect": "allow", "is_enabled": False}, True),
        (
            {"effect": "allow", "is_enabled": True, "conditions": []},
            {"effect": "deny", "is_enabled": True, "conditions": []},
            True,
        ),
        (
            {"effect": "deny", "is_enabled": True, "conditions": []},
            {"effect": "allow", "is_enabled": True, "conditions": []},
            False,
        ),
        (
            {"effect": "deny", "is_enabled": True, "conditions": []},
            {"effect": "deny", "is_enabled": False, "conditions": []},
            False,
        ),
        (
            {"effect": "allow", "is_enabled": False, "conditions": []},
            {"effect": "allow", "is_enabled": True, "conditions": []},
            False,
        ),
        (
            {"effect": "deny", "is_enabled": False, "conditions": []},
            {"effect": "deny", "is_enabled": True, "conditions": []},
            True,
        ),
        (
            {"effect": "deny", "is_enabled": True, "conditions": [1]},
            {"effect": "deny", "is_enabled": True, "conditions": [2]},
            False,
        ),
    ],
)
def test_which_scope_changes_only_narrow(before, after, narrows):
    assert scope_only_narrows(before, after) is narrows


@pytest.mark.parametrize(
    ("change", "narrows"),
    [
        ({"maximum": "100.00"}, True),
        ({"maximum": "400.00"}, False),
        ({"window_minutes": 60 * 24 * 60}, True),
        ({"window_minutes": 60}, False),
        ({"effect_when_exceeded": "deny"}, True),
        ({"is_enabled": False}, False),
        ({"subject": "proposer"}, False),
    ],
)
def test_which_limit_changes_only_narrow(change, narrows):
    before = {
        "name": "x",
        "definition": None,
        "action_type": "issue_refund",
        "measure": "amount",
        "subject": "customer",
        "maximum": "300.00",
        "window_minutes": 30 * 24 * 60,
        "effect_when_exceeded": "require_approval",
        "is_enabled": True,
    }
    assert limit_only_narrows(before, {**before, **change}) is narrows
    assert limit_only_narrows(None, before) is True


def test_disabling_a_limit_waits_and_is_applied_by_the_second_admin(admin_user, admin2):
    limit = CumulativeLimit.objects.get(name=CARD_BLOCKS)
    obj, pending = rule_toggle_submit(model=CumulativeLimit, pk=limit.pk, enabled=False, actor=admin_user, reason="x")
    assert obj is None and CumulativeLimit.objects.get(pk=limit.pk).is_enabled
    governance_approve(change_id=pending.pk, user=admin2)
    assert not CumulativeLimit.objects.get(pk=limit.pk).is_enabled
    # Enabling it again only narrows: at once.
    obj, pending = rule_toggle_submit(model=CumulativeLimit, pk=limit.pk, enabled=True, actor=admin_user, reason="y")
    assert pending is None and obj.is_enabled


# --- grants -------------------------------------------------------------------------------


def _grant_post(team: Group, definition: JourneyDefinition, **overrides):
    from review.services.grants import grant_state

    state = grant_state(team=team)
    data = {}
    for d in JourneyDefinition.objects.all():
        entry = state[d.key]
        for code in entry["perms"]:
            data[f"perm:{d.pk}:{code}"] = "on"
        if entry["limit"]:
            data[f"limit:{d.pk}"] = entry["limit"]
        if entry["sensitive"]:
            data[f"sensitive:{d.pk}"] = "on"
    for key, value in overrides.items():
        key = key.replace("D", str(definition.pk))
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_a_grant_that_raises_an_approval_limit_waits_while_a_narrowing_one_applies(
    client, admin_user, admin2, supervisor
):
    team = Group.objects.get(name="Cards team")
    card = JourneyDefinition.objects.get(key="card_dispute")
    lost = JourneyDefinition.objects.get(key="lost_card")
    client.force_login(admin_user)
    data = _grant_post(team, card, **{"limit:D": "5000.00"})
    data.pop(f"perm:{lost.pk}:annotate", None)  # and, at the same time, a narrowing change
    response = client.post(reverse("team_grants", args=[team.pk]), data, follow=True)
    assert "waits for a second admin" in response.content.decode()
    assert approval_limit_for(supervisor, card) == Decimal("1000.00")
    assert not user_may(supervisor, Right.ANNOTATE, lost)  # applied at once
    change = GovernanceChange.objects.get(kind="grant")
    assert (change.before["limit"], change.after["limit"]) == ("1000.00", "5000.00")

    page = client.get(reverse("governance_detail", args=[change.pk])).content.decode()
    assert "1000.00" in page and "5000.00" in page and "Approve and apply" not in page  # the maker's view
    # A forged approval by the maker changes nothing.
    client.post(reverse("governance_approve", args=[change.pk]))
    assert GovernanceChange.objects.get(pk=change.pk).status == S.PENDING

    client.force_login(admin2)
    assert "Approve and apply" in client.get(reverse("governance_detail", args=[change.pk])).content.decode()
    client.post(reverse("governance_approve", args=[change.pk]), {"reason": "Seen"})
    assert approval_limit_for(supervisor, card) == Decimal("5000.00")


@pytest.mark.parametrize(
    ("overrides", "waits"),
    [
        ({"perm:D:pause_agents": "on"}, True),
        ({"sensitive:D": None}, False),  # removing the unmask right narrows
        ({"limit:D": "10.00"}, False),
        ({"perm:D:audit": "on"}, False),
    ],
)
def test_which_grant_changes_wait(client, admin_user, overrides, waits):
    team = Group.objects.get(name="Cards team")
    card = JourneyDefinition.objects.get(key="card_dispute")
    client.force_login(admin_user)
    client.post(reverse("team_grants", args=[team.pk]), _grant_post(team, card, **overrides))
    assert GovernanceChange.objects.filter(kind="grant", status=S.PENDING).exists() is waits


def test_adding_the_unmask_right_waits(client, admin_user):
    team = Group.objects.create(name="Night shift")
    card = JourneyDefinition.objects.get(key="card_dispute")
    client.force_login(admin_user)
    client.post(
        reverse("team_grants", args=[team.pk]),
        _grant_post(team, card, **{"perm:D:view_journeys": "on", "sensitive:D": "on"}),
    )
    change = GovernanceChange.objects.get(kind="grant")
    assert change.after["sensitive"] is True and change.before["sensitive"] is False


# --- rejection, expiry, staleness -----------------------------------------------------------


def test_rejection_needs_a_reason_and_a_rejected_change_is_never_applied(admin_user, admin2):
    _, _, pending = _submit_scope(admin_user)
    with pytest.raises(GovernanceError, match="needs a reason"):
        governance_reject(change_id=pending.pk, user=admin2, reason=" ")
    governance_reject(change_id=pending.pk, user=admin2, reason="Too generous")
    with pytest.raises(GovernanceError, match="already rejected by admin2"):
        governance_approve(change_id=pending.pk, user=admin2)
    assert not PermissionScope.objects.filter(name="Refunds up to 80.00 are automatic").exists()
    assert AuditRecord.objects.filter(kind="governance_rejected").count() == 1


def test_the_maker_may_withdraw_their_own_request(admin_user):
    _, _, pending = _submit_scope(admin_user)
    governance_reject(change_id=pending.pk, user=admin_user, reason="Changed my mind")
    assert GovernanceChange.objects.get(pk=pending.pk).status == S.REJECTED


def test_an_unanswered_change_expires_and_can_no_longer_be_approved(admin_user, admin2, settings):
    assert "expire-governance-changes" in settings.CELERY_BEAT_SCHEDULE
    _, _, pending = _submit_scope(admin_user)
    assert governance_expire(now=timezone.now()) == 0
    later = timezone.now() + timedelta(hours=73)
    assert governance_expire(now=later) == 1
    assert governance_expire(now=later) == 0  # idempotent
    change = GovernanceChange.objects.get(pk=pending.pk)
    assert change.status == S.EXPIRED and change.checker is None
    with pytest.raises(GovernanceError, match="already expired"):
        governance_approve(change_id=pending.pk, user=admin2)
    assert AuditRecord.objects.filter(kind="governance_expired").count() == 1


def test_a_change_past_its_time_is_not_approved_even_before_the_beat_runs(admin_user, admin2):
    _, _, pending = _submit_scope(admin_user)
    GovernanceChange.objects.filter(pk=pending.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(GovernanceError, match="expired"):
        governance_approve(change_id=pending.pk, user=admin2)
    assert not PermissionScope.objects.filter(name="Refunds up to 80.00 are automatic").exists()


def test_a_change_requested_against_a_rule_that_changed_since_is_refused(admin_user, admin2):
    scope = PermissionScope.objects.get(name="Refunds up to 35.00 are automatic")
    _, _, pending = _submit_scope(admin_user, instance=scope, conditions_text="amount <= 60.00", reason="wider")
    # Meanwhile another admin narrows the same rule (applies at once).
    scope.refresh_from_db()
    assert _submit_scope(admin2, instance=scope, effect="require_approval")[2] is None
    with pytest.raises(GovernanceError, match="has changed since"):
        governance_approve(change_id=pending.pk, user=admin2)
    scope.refresh_from_db()
    assert scope.effect == "require_approval" and scope.conditions[0]["value"] == "35.00"
    assert GovernanceChange.objects.get(pk=pending.pk).status == S.PENDING  # rolled back with the refusal


# --- the page -------------------------------------------------------------------------------


def test_the_checker_sees_before_after_and_how_recent_proposals_would_be_decided(client, admin_user, admin2, agent):
    journey = start("fee_refund", customer="CUST-00001")
    for amount in ("20.00", "40.00", "45.00"):
        refund(journey, amount, agent=agent)
    scope = PermissionScope.objects.get(name="Refunds over 35.00 up to 500.00 need one approver")
    client.force_login(admin_user)
    data = _as_data(scope, conditions_text="amount > 50.00\namount <= 500.00", reason="Narrow the tier")
    assert client.post(reverse("review_scope_edit", args=[scope.pk]), data).status_code == 302
    change = GovernanceChange.objects.get(status=S.PENDING)
    client.force_login(admin2)
    listing = client.get(reverse("governance_list")).content.decode()
    assert "change permission scope &#x27;Refunds over 35.00 up to 500.00 need one approver&#x27;" in listing
    response = client.get(reverse("governance_detail", args=[change.pk]))
    page = response.content.decode()
    assert "35.00" in page and "50.00" in page and "Narrow the tier" in page
    preview = response.context["preview"]
    changed = {row["proposal"].params["amount"]: row["new"].effect for row in preview["rows"] if row["changed"]}
    assert changed == {"40.00": "deny", "45.00": "deny"}
    assert "2 of 3 would be decided differently" in page
    client.post(reverse("governance_approve", args=[change.pk]))
    assert PermissionScope.objects.get(pk=scope.pk).conditions[0]["value"] == "50.00"


def test_a_limit_change_shows_who_it_counts_now(client, admin_user, admin2, agent):
    journey = start("card_dispute", customer="CUST-00002")
    for _ in range(4):
        refund(journey, "30.00", agent=agent)
    limit = CumulativeLimit.objects.get(name="Refunds per customer: 300.00 per 30 days without approval")
    client.force_login(admin_user)
    client.post(reverse("review_limit_edit", args=[limit.pk]), _limit_data(limit, maximum="1000.00"))
    change = GovernanceChange.objects.get(status=S.PENDING, kind="limit")
    client.force_login(admin2)
    rows = client.get(reverse("governance_detail", args=[change.pk])).context["limit_rows"]
    assert rows == [
        {"subject": "customer:CUST-00002", "used": Decimal("120.00"), "over_before": False, "over_after": False}
    ]


def test_supervisors_and_compliance_do_not_reach_governance_changes(client, admin_user, supervisor, compliance):
    _, _, pending = _submit_scope(admin_user)
    for user in (supervisor, compliance):
        client.force_login(user)
        assert client.get(reverse("governance_list")).status_code == 404
        assert client.get(reverse("governance_detail", args=[pending.pk])).status_code == 404
        assert client.post(reverse("governance_approve", args=[pending.pk])).status_code == 404
    assert GovernanceChange.objects.get(pk=pending.pk).status == S.PENDING


def test_the_demo_has_a_second_admin_and_the_menu_shows_governance_changes(client, admin2):
    assert admin2.is_superuser and admin2.check_password("demo") is not None
    client.force_login(admin2)
    assert reverse("governance_list") in client.get(reverse("review_scopes")).content.decode()


# --- two admins at once ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))
def test_two_admins_approving_the_same_change_at_once_have_one_winner(admin_user, admin2, admin3, attempt):
    _, _, pending = _submit_scope(admin_user, name=f"Race {attempt}")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user) -> None:
        try:
            barrier.wait(timeout=10)
            governance_approve(change_id=pending.pk, user=user)
            outcomes.append("won")
        except GovernanceError as exc:
            outcomes.append(f"lost: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (admin2, admin3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(o.split(":")[0] for o in outcomes) == ["lost", "won"], outcomes
    assert "already approved" in next(o for o in outcomes if o.startswith("lost"))
    assert PermissionScope.objects.filter(name=f"Race {attempt}").count() == 1
    assert ScopeChange.objects.filter(name=f"Race {attempt}").count() == 1
    assert AuditRecord.objects.filter(kind="governance_approved").count() == 1
