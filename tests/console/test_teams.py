"""The team permissions page: admins only; every change audited with before and after."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from journeys.access import approval_limit_for, definitions_for, user_may
from journeys.models import ApprovalLimit, JourneyDefinition
from journeys.rights import Right
from review.models import AuditRecord, GovernanceChange, SensitiveDataGrant
from review.models.audit import GOVERNANCE_CHAIN


def _matrix_post(team: Group | None, **overrides: str) -> dict[str, str]:
    """The grant form as the page would post it, from the team's current grants."""
    from console.teams import grant_state

    state = grant_state(team=team) if team else {}
    data: dict[str, str] = {}
    for definition in JourneyDefinition.objects.all():
        entry = state.get(definition.key, {"perms": [], "limit": None, "sensitive": False})
        for code in entry["perms"]:
            data[f"perm:{definition.pk}:{code}"] = "on"
        if entry["limit"]:
            data[f"limit:{definition.pk}"] = entry["limit"]
        if entry["sensitive"]:
            data[f"sensitive:{definition.pk}"] = "on"
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("who", ["supervisor", "supervisor2", "compliance", "outsider"])
def test_only_admins_may_use_the_teams_page(client, demo, outsider, who):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=who))
    assert client.get(reverse("team_list")).status_code == 404
    team = Group.objects.get(name="Cards team")
    assert client.post(reverse("team_grants", args=[team.pk]), {}).status_code == 404
    assert client.post(reverse("team_member_add", args=[team.pk]), {"username": who}).status_code == 404
    assert not team.user_set.filter(username=who).exists() or who == "supervisor"


def test_admin_sees_teams_members_and_agents(client, admin_user, agent):
    client.force_login(admin_user)
    page = client.get(reverse("team_list"))
    assert page.status_code == 200
    assert "Cards team" in page.text and "Servicing team" in page.text and agent.name in page.text
    detail = client.get(reverse("team_detail", args=[Group.objects.get(name="Cards team").pk]))
    assert "supervisor" in detail.text


def test_granting_a_team_approval_with_a_limit_is_applied_and_audited_with_before_and_after(
    client, admin_user, admin2, supervisor2
):
    team = Group.objects.get(name="Servicing team")
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    assert not user_may(supervisor2, Right.VIEW, lost_card)
    client.force_login(admin_user)
    response = client.post(
        reverse("team_grants", args=[team.pk]),
        _matrix_post(
            team,
            **{
                f"perm:{lost_card.pk}:view_journeys": "on",
                f"perm:{lost_card.pk}:approve_actions": "on",
                f"limit:{lost_card.pk}": "250",
            },
        ),
    )
    assert response.status_code == 302
    # Approve rights with a limit widen what the team may do: nothing applies until a second
    # admin approves the request.
    assert not user_may(supervisor2, Right.VIEW, lost_card)
    change = GovernanceChange.objects.get(kind="grant", status="pending")
    assert change.maker == admin_user and change.target_id == lost_card.pk
    client.force_login(admin2)
    assert client.post(reverse("governance_approve", args=[change.pk])).status_code == 302
    assert user_may(supervisor2, Right.VIEW, lost_card)
    assert approval_limit_for(supervisor2, lost_card) == Decimal("250.00")
    record = AuditRecord.objects.get(chain=GOVERNANCE_CHAIN, kind="grant_change")
    assert record.actor_label == "admin2" and record.payload["data"]["maker"] == "admin"
    assert record.definition_id == lost_card.pk
    assert record.payload["before"] == {"perms": [], "limit": None, "sensitive": False}
    assert record.payload["after"] == {
        "perms": ["view_journeys", "approve_actions"],
        "limit": "250.00",
        "sensitive": False,
    }


def test_revoking_a_grant_takes_effect_at_once_and_is_audited(client, admin_user, supervisor):
    team = Group.objects.get(name="Cards team")
    card = JourneyDefinition.objects.get(key="card_dispute")
    client.force_login(admin_user)
    overrides = {f"perm:{card.pk}:{c}": None for c in ("view_journeys", "take_over", "approve_actions", "annotate")}
    overrides[f"limit:{card.pk}"] = None
    overrides[f"sensitive:{card.pk}"] = None
    client.post(reverse("team_grants", args=[team.pk]), _matrix_post(team, **overrides))
    assert card not in definitions_for(supervisor)
    assert not ApprovalLimit.objects.filter(team=team, definition=card).exists()
    assert not SensitiveDataGrant.objects.filter(team=team, definition=card).exists()
    record = AuditRecord.objects.get(kind="grant_change")
    assert record.payload["after"]["perms"] == []
    assert record.payload["before"]["sensitive"] is True


def test_a_bad_limit_is_a_form_error_and_changes_nothing(client, admin_user):
    team = Group.objects.get(name="Cards team")
    card = JourneyDefinition.objects.get(key="card_dispute")
    client.force_login(admin_user)
    for bad in ("lots", "-5", "1e40", "NaN"):
        response = client.post(reverse("team_grants", args=[team.pk]), _matrix_post(team, **{f"limit:{card.pk}": bad}))
        assert response.status_code == 400
        assert "approval limit" in response.text
    assert ApprovalLimit.objects.get(team=team, definition=card).limit == Decimal("1000.00")
    assert not AuditRecord.objects.filter(kind="grant_change").exists()


def test_team_creation_membership_and_deletion_are_audited(client, admin_user, outsider):
    client.force_login(admin_user)
    response = client.post(reverse("team_create"), {"name": "Night shift"})
    team = Group.objects.get(name="Night shift")
    assert response.status_code == 302
    client.post(reverse("team_member_add", args=[team.pk]), {"username": "outsider"})
    assert team.user_set.filter(pk=outsider.pk).exists()
    client.post(reverse("team_member_remove", args=[team.pk, outsider.pk]))
    assert not team.user_set.exists()
    client.post(reverse("team_delete", args=[team.pk]))
    assert not Group.objects.filter(name="Night shift").exists()
    changes = list(AuditRecord.objects.filter(kind="team_change").order_by("seq"))
    assert [c.summary for c in changes] == [
        "Team Night shift created",
        "outsider added to Night shift",
        "outsider removed from Night shift",
        "Team Night shift deleted",
    ]
    assert changes[1].payload["before"] == {"members": []}
    assert changes[1].payload["after"] == {"members": ["outsider"]}


def test_adding_an_unknown_user_or_a_duplicate_team_is_a_form_error(client, admin_user):
    client.force_login(admin_user)
    team = Group.objects.get(name="Cards team")
    assert client.post(reverse("team_member_add", args=[team.pk]), {"username": "nobody"}).status_code == 400
    assert client.post(reverse("team_create"), {"name": "cards TEAM"}).status_code == 400
    assert not AuditRecord.objects.filter(kind="team_change").exists()


def test_agent_grants_are_managed_on_their_own_page_and_audited(client, admin_user, agent):
    fee = JourneyDefinition.objects.get(key="fee_refund")
    client.force_login(admin_user)
    assert client.get(reverse("agent_grants_page", args=[agent.pk])).status_code == 200
    response = client.post(reverse("agent_grants", args=[agent.pk]), {f"perm:{fee.pk}:view_journeys": "on"})
    assert response.status_code == 302
    assert user_may(agent.user, Right.VIEW, fee)
    record = AuditRecord.objects.get(kind="grant_change")
    assert "agent Scripted agent" in record.summary


def test_grant_and_membership_changes_made_outside_the_page_are_audited_too(admin_user, outsider):
    """The Django admin (guardian's object permissions) and shells change grants directly."""
    from guardian.shortcuts import assign_perm, remove_perm

    team = Group.objects.get(name="Servicing team")
    card = JourneyDefinition.objects.get(key="card_dispute")
    assign_perm("journeys.view_journeys", team, card)
    remove_perm("journeys.view_journeys", team, card)
    outsider.groups.add(team)
    team.user_set.remove(outsider)
    kinds = list(
        AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN)
        .order_by("-seq")[:4]
        .values_list("kind", "summary", "definition_id")
    )[::-1]
    assert kinds == [
        ("grant_added", "Granted view_journeys for team Servicing team", card.pk),
        ("grant_removed", "Revoked view_journeys for team Servicing team", card.pk),
        ("membership_change", "outsider added to Servicing team", None),
        ("membership_change", "outsider removed from Servicing team", None),
    ]


def test_the_teams_page_writes_one_before_and_after_record_not_one_per_row(client, admin_user):
    team = Group.objects.get(name="Servicing team")
    lost_card = JourneyDefinition.objects.get(key="lost_card")
    last = AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN).order_by("-seq").first()
    client.force_login(admin_user)
    client.post(
        reverse("team_grants", args=[team.pk]),
        _matrix_post(
            team,
            **{f"perm:{lost_card.pk}:view_journeys": "on", f"perm:{lost_card.pk}:annotate": "on"},
        ),
    )
    new = AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN, seq__gt=last.seq if last else 0)
    assert list(new.values_list("kind", flat=True)) == ["grant_change"]


@pytest.mark.parametrize(
    "who,audit,teams",
    [
        ("supervisor", False, False),
        ("compliance", True, False),
        ("admin", True, True),
        ("outsider", False, False),
    ],
)
def test_the_menu_shows_audit_and_teams_to_the_right_people(client, demo, outsider, who, audit, teams):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=who))
    nav = client.get(reverse("no_access")).context["nav_items"]
    labels = [item["label"] for item in nav]
    assert ("Audit" in labels) == audit
    assert ("Teams" in labels) == teams
