"""Organisation-wide grants under maker-checker: adding a right waits for a second admin,
removing one applies at once, and neither the service nor the pages let one admin grant alone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from journeys.control import may_pause
from journeys.models import OrganisationGrant
from review.audit.access import may_audit_everything
from review.models import AuditRecord, GovernanceChange
from review.services.governance import GovernanceError, governance_approve, org_grant_submit

S = GovernanceChange.Status
PAUSE = OrganisationGrant.Right.PAUSE
AUDIT = OrganisationGrant.Right.AUDIT


@pytest.fixture
def cards(demo) -> Group:
    """A team the demo gives no organisation-wide right."""
    team = Group.objects.get(name="Cards team")
    assert not team.organisation_grants.exists()
    return team


def _held(team: Group) -> set[str]:
    return set(team.organisation_grants.values_list("right", flat=True))


# --- the service ------------------------------------------------------------------------------


def test_adding_a_right_waits_and_only_a_second_admin_applies_it(cards, admin_user, admin2, supervisor):
    applied, change = org_grant_submit(team=cards, rights=[PAUSE], actor=admin_user, reason="Night desk")
    assert applied is None and change.status == S.PENDING and change.kind == GovernanceChange.Kind.ORG_GRANT
    assert change.before == {"rights": []} and change.after == {"rights": [PAUSE]}
    assert _held(cards) == set() and not may_pause(supervisor, None)

    with pytest.raises(GovernanceError, match="four-eyes"):
        governance_approve(change_id=change.pk, user=admin_user)
    assert _held(cards) == set()

    governance_approve(change_id=change.pk, user=admin2, reason="Agreed")
    change.refresh_from_db()
    assert change.status == S.APPROVED and change.checker == admin2
    assert _held(cards) == {PAUSE} and may_pause(supervisor, None)
    applied_record = AuditRecord.objects.filter(kind="grant_change", payload__data__governance_change=change.pk)
    assert applied_record.get().actor_label == admin2.get_username()


def test_removing_a_right_applies_at_once_and_is_audited(demo, admin_user, compliance):
    team = Group.objects.get(name="Compliance")
    assert AUDIT in _held(team)
    applied, change = org_grant_submit(team=team, rights=[], actor=admin_user, reason="Audit moves to a vendor")
    assert change is None and applied == {"rights": []}
    assert _held(team) == set() and not may_audit_everything(compliance)
    record = AuditRecord.objects.filter(kind="grant_change").latest("pk")
    assert record.payload["before"] == {"rights": [AUDIT]} and record.payload["after"] == {"rights": []}


def test_a_non_admin_cannot_propose_and_cannot_approve(cards, admin_user, supervisor):
    with pytest.raises(GovernanceError, match="Only an admin of teams"):
        org_grant_submit(team=cards, rights=[PAUSE], actor=supervisor, reason="Let me")
    assert not GovernanceChange.objects.exists()

    _, change = org_grant_submit(team=cards, rights=[PAUSE], actor=admin_user, reason="Night desk")
    with pytest.raises(GovernanceError, match="Only an admin of teams"):
        governance_approve(change_id=change.pk, user=supervisor)
    change.refresh_from_db()
    assert change.status == S.PENDING and _held(cards) == set()


def test_a_reason_and_known_rights_are_required(cards, admin_user):
    with pytest.raises(GovernanceError, match="Say why"):
        org_grant_submit(team=cards, rights=[PAUSE], actor=admin_user, reason="  ")
    with pytest.raises(GovernanceError, match="No such organisation-wide right: approve"):
        org_grant_submit(team=cards, rights=["approve"], actor=admin_user, reason="Why not")
    assert not GovernanceChange.objects.exists()


def test_a_change_requested_against_rights_that_changed_since_is_refused(cards, admin_user, admin2):
    _, change = org_grant_submit(team=cards, rights=[PAUSE], actor=admin_user, reason="Night desk")
    _, other = org_grant_submit(team=cards, rights=[AUDIT], actor=admin_user, reason="Reviews")
    governance_approve(change_id=other.pk, user=admin2)
    with pytest.raises(GovernanceError, match="have changed since"):
        governance_approve(change_id=change.pk, user=admin2)
    assert _held(cards) == {AUDIT}


# --- the pages (forged POSTs) -----------------------------------------------------------------


def _post(client, team: Group, *rights: str, reason: str = "Night desk"):
    data = {f"org:{code}": "on" for code in rights}
    data["reason"] = reason
    return client.post(reverse("team_org_rights", args=[team.pk]), data)


def test_the_team_page_requests_and_the_governance_page_approves(client, cards, admin_user, admin2):
    client.force_login(admin_user)
    page = client.get(reverse("team_detail", args=[cards.pk])).content.decode()
    assert 'name="org:pause_agents"' in page and reverse("team_org_rights", args=[cards.pk]) in page

    response = _post(client, cards, PAUSE)
    assert response.status_code == 302 and _held(cards) == set()
    change = GovernanceChange.objects.get(kind=GovernanceChange.Kind.ORG_GRANT)
    assert "Waiting for a second admin" in client.get(reverse("team_detail", args=[cards.pk])).content.decode()

    # The maker's forged approval is refused and changes nothing.
    client.post(reverse("governance_approve", args=[change.pk]), {"reason": "self"})
    change.refresh_from_db()
    assert change.status == S.PENDING and _held(cards) == set()

    client.force_login(admin2)
    detail = client.get(reverse("governance_detail", args=[change.pk])).content.decode()
    assert "Organisation-wide rights" in detail and PAUSE in detail
    assert client.post(reverse("governance_approve", args=[change.pk]), {"reason": "ok"}).status_code == 302
    change.refresh_from_db()
    assert change.status == S.APPROVED and _held(cards) == {PAUSE}


def test_a_non_admin_reaches_neither_the_form_nor_the_decision(client, cards, admin_user, supervisor):
    client.force_login(supervisor)
    assert _post(client, cards, PAUSE).status_code == 404
    assert not GovernanceChange.objects.exists()

    _, change = org_grant_submit(team=cards, rights=[PAUSE], actor=admin_user, reason="Night desk")
    assert client.post(reverse("governance_approve", args=[change.pk]), {"reason": "ok"}).status_code == 404
    change.refresh_from_db()
    assert change.status == S.PENDING and _held(cards) == set()


def test_the_page_refuses_a_missing_reason_and_removes_at_once(client, demo, admin_user):
    team = Group.objects.get(name="Compliance")
    client.force_login(admin_user)
    response = _post(client, team, reason="")
    assert response.status_code == 400 and "Say why" in response.content.decode()
    assert _held(team) == {AUDIT}
    assert _post(client, team).status_code == 302
    assert _held(team) == set() and not GovernanceChange.objects.exists()


# --- a person gaining the rights by joining the team ---------------------------------------------


def test_joining_a_team_with_organisation_wide_rights_waits_for_a_second_admin(
    client, demo, admin_user, admin2, supervisor
):
    admins = Group.objects.get(name="Admins")
    client.force_login(admin_user)
    response = client.post(reverse("team_member_add", args=[admins.pk]), {"username": "supervisor"})
    assert response.status_code == 302
    assert not admins.user_set.filter(pk=supervisor.pk).exists() and not may_pause(supervisor, None)
    change = GovernanceChange.objects.get(kind=GovernanceChange.Kind.ORG_GRANT)
    assert change.payload["member_id"] == supervisor.pk and "supervisor" in change.after["members"]

    client.post(reverse("governance_approve", args=[change.pk]), {"reason": "self"})
    change.refresh_from_db()
    assert change.status == S.PENDING and not admins.user_set.filter(pk=supervisor.pk).exists()

    client.force_login(admin2)
    detail = client.get(reverse("governance_detail", args=[change.pk])).content.decode()
    assert "Members" in detail and "supervisor" in detail
    client.post(reverse("governance_approve", args=[change.pk]), {"reason": "ok"})
    change.refresh_from_db()
    assert change.status == S.APPROVED
    assert admins.user_set.filter(pk=supervisor.pk).exists() and may_pause(supervisor, None)
    assert AuditRecord.objects.filter(kind="team_change", payload__data__governance_change=change.pk).exists()


def test_joining_a_team_that_may_approve_waits_for_a_second_admin(client, cards, admin_user, admin2, supervisor2):
    """Approve on a definition is as governed as an organisation-wide right: joining the team
    that holds it is granting it."""
    client.force_login(admin_user)
    assert client.post(reverse("team_member_add", args=[cards.pk]), {"username": "supervisor2"}).status_code == 302
    assert not cards.user_set.filter(pk=supervisor2.pk).exists()
    change = GovernanceChange.objects.get(kind=GovernanceChange.Kind.ORG_GRANT)
    assert "approve_actions on card_dispute" in change.subject

    client.force_login(admin2)
    client.post(reverse("governance_approve", args=[change.pk]), {"reason": "ok"})
    change.refresh_from_db()
    assert change.status == S.APPROVED and cards.user_set.filter(pk=supervisor2.pk).exists()


def test_joining_a_team_without_governed_rights_applies_at_once(client, demo, admin_user, supervisor2):
    team = Group.objects.create(name="Readers")
    client.force_login(admin_user)
    assert client.post(reverse("team_member_add", args=[team.pk]), {"username": "supervisor2"}).status_code == 302
    assert team.user_set.filter(pk=supervisor2.pk).exists() and not GovernanceChange.objects.exists()


def test_a_non_admin_cannot_request_a_member(demo, supervisor, supervisor2):
    from review.services.governance import org_member_request

    with pytest.raises(GovernanceError, match="Only an admin of teams"):
        org_member_request(team=Group.objects.get(name="Admins"), user=supervisor2, actor=supervisor)
    assert not GovernanceChange.objects.exists()
