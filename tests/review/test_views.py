"""The review pages as an allowed user, a read-only user (compliance) and a foreign-team user."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from journeys.models import Event, ProposedAction
from journeys.selectors import with_transitions
from review.models import CumulativeLimit, PermissionScope, ReviewSample, ScopeChange

from .helpers import propose, refund, start

S = ProposedAction.Status


@pytest.fixture
def pending(demo, agent):
    journey = start("card_dispute", customer="CUST-00001")
    return refund(journey, "120.00", agent=agent)


def _login(client, user):
    client.force_login(user)
    return client


# --- the queue ------------------------------------------------------------------------------


def test_the_queue_shows_pending_actions_with_what_a_supervisor_needs(client, supervisor, pending):
    response = _login(client, supervisor).get(reverse("review_queue"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"J-{pending.journey_id}" in html
    assert "CUST-00001" in html
    assert "Refunds over 35.00 up to 500.00 need one approver" in html
    assert "Test proposal." in html  # the agent's explanation
    assert "min" in html  # time left
    for label in (">Approve<", ">Reject<", ">Edit &amp; approve<"):
        assert label in html


def test_the_queue_is_filtered_by_the_users_teams(client, supervisor2, pending):
    response = _login(client, supervisor2).get(reverse("review_queue"))
    assert response.status_code == 200
    assert f"J-{pending.journey_id}" not in response.content.decode()


def test_compliance_sees_no_decisions_and_cannot_decide(client, compliance, pending):
    _login(client, compliance)
    response = client.get(reverse("review_queue"))
    assert f"J-{pending.journey_id}" not in response.content.decode()
    assert client.post(reverse("review_approve", args=[pending.pk])).status_code == 404
    assert client.post(reverse("review_reject", args=[pending.pk]), {"reason": "x"}).status_code == 404
    assert client.get(reverse("review_edit", args=[pending.pk])).status_code == 404
    assert ProposedAction.objects.get(pk=pending.pk).status == S.PENDING


def test_a_foreign_team_user_gets_404_on_decisions(client, supervisor2, pending):
    _login(client, supervisor2)
    assert client.post(reverse("review_approve", args=[pending.pk])).status_code == 404
    assert client.post(reverse("review_reject", args=[pending.pk]), {"reason": "x"}).status_code == 404


def test_the_queue_filters_by_definition_and_action_type(client, supervisor, pending, agent):
    other = propose(
        start("lost_card", customer="CUST-00002"),
        "order_card",
        {"account": "ACC-000002", "address": "1 High St", "expedited": True},
        agent=agent,
    )
    _login(client, supervisor)
    html = client.get(reverse("review_queue"), {"definition": "lost_card"}).content.decode()
    assert f"proposal-{other.pk}" in html and f"proposal-{pending.pk}" not in html
    html = client.get(reverse("review_queue"), {"action": "issue_refund"}).content.decode()
    assert f"proposal-{pending.pk}" in html and f"proposal-{other.pk}" not in html


def test_polling_answers_no_content_when_nothing_changed(client, supervisor, pending, agent):
    _login(client, supervisor)
    first = client.get(reverse("review_queue"), headers={"HX-Request": "true"})
    cursor = first.context["cursor"]
    assert client.get(reverse("review_queue"), {"since": cursor}, headers={"HX-Request": "true"}).status_code == 204
    newer = refund(start("card_dispute", customer="CUST-00003"), "150.00", agent=agent)
    fresh = client.get(reverse("review_queue"), {"since": cursor}, headers={"HX-Request": "true"})
    assert fresh.status_code == 200
    assert f"proposal-{newer.pk}" in fresh.content.decode()
    assert "<html" not in fresh.content.decode()  # only the rows fragment


def test_approve_and_reject_through_the_console(client, supervisor, pending, agent):
    _login(client, supervisor)
    response = client.post(reverse("review_approve", args=[pending.pk]), follow=True)
    assert "Approved Issue refund" in response.content.decode()
    assert ProposedAction.objects.get(pk=pending.pk).status == S.APPROVED
    other = refund(start("card_dispute", customer="CUST-00004"), "130.00", agent=agent)
    response = client.post(reverse("review_reject", args=[other.pk]), {"reason": ""}, follow=True)
    assert "needs a reason" in response.content.decode()
    assert ProposedAction.objects.get(pk=other.pk).status == S.PENDING
    client.post(reverse("review_reject", args=[other.pk]), {"reason": "Not eligible"})
    assert ProposedAction.objects.get(pk=other.pk).decision_reason == "Not eligible"


def test_losing_a_decision_race_shows_a_clear_message(client, supervisor, pending):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from review.services import proposal_reject

    colleague = get_user_model().objects.create_user("carla")
    colleague.groups.add(Group.objects.get(name="Cards team"))
    proposal_reject(proposal_id=pending.pk, user=colleague, reason="Duplicate")
    response = _login(client, supervisor).post(reverse("review_approve", args=[pending.pk]), follow=True)
    assert "already rejected by carla" in response.content.decode()


def test_edit_and_approve_page_validates_and_rechecks(client, supervisor, pending):
    _login(client, supervisor)
    url = reverse("review_edit", args=[pending.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'value="120.00"' in page.content.decode()
    bad = client.post(url, {**pending.params, "amount": "9000.00", "edit_reason": "more"})
    assert bad.status_code == 400, bad.content.decode()
    assert "current rules deny" in bad.content.decode()
    missing = client.post(url, {**pending.params, "amount": "90.00"})
    assert missing.status_code == 400 and "needs a reason" in missing.content.decode()
    client.post(url, {**pending.params, "amount": "90.00", "edit_reason": "Only the disputed part"})
    proposal = ProposedAction.objects.get(pk=pending.pk)
    assert proposal.status == S.APPROVED and proposal.params["amount"] == "90.00"


def test_batch_from_the_queue_reports_each_item(client, supervisor, pending, agent):
    too_big = refund(start("card_dispute", customer="CUST-00005"), "1500.00", agent=agent)
    _login(client, supervisor)
    response = client.post(
        reverse("review_batch"), {"ids": [pending.pk, too_big.pk], "decision": "approve"}, follow=True
    )
    html = response.content.decode()
    assert "1 of 2 went through" in html
    assert "1 did not" in html and "approval limit" in html
    forbidden = refund(start("fee_refund", customer="CUST-00006"), "100.00", agent=agent)
    response = client.post(reverse("review_batch"), {"ids": [forbidden.pk], "decision": "approve"}, follow=True)
    assert f"#{forbidden.pk}: No such action in your queue." in response.content.decode()
    assert ProposedAction.objects.get(pk=forbidden.pk).status == S.PENDING
    # An item decided meanwhile by someone else is reported, the rest still goes through.
    fresh = refund(start("card_dispute", customer="CUST-00007"), "100.00", agent=agent)
    response = client.post(reverse("review_batch"), {"ids": [pending.pk, fresh.pk], "decision": "approve"}, follow=True)
    html = response.content.decode()
    assert "1 of 2 went through" in html and "already approved by supervisor" in html
    assert ProposedAction.objects.get(pk=fresh.pk).status == S.APPROVED
    for bad in (
        {"decision": "approve"},
        {"ids": ["x"], "decision": "approve"},
        {"ids": [fresh.pk], "decision": "reject"},
    ):
        response = client.post(reverse("review_batch"), bad, follow=True)
        assert response.status_code == 200
        assert any(
            word in response.content.decode() for word in ("Select at least one", "not a list", "needs a reason")
        )


def test_decide_partial_renders_for_a_pending_proposal_only(rf, supervisor, pending):
    from django.template.loader import render_to_string

    request = rf.get("/journeys/1/")
    request.user = supervisor
    html = render_to_string(
        "review/_decide.html", {"proposal": with_transitions(supervisor, [pending])[0]}, request=request
    )
    assert "Approve" in html and "Reject" in html and "Edit &amp; approve" in html
    pending.status = S.APPROVED
    decided = with_transitions(supervisor, [pending])[0]
    assert render_to_string("review/_decide.html", {"proposal": decided}, request=request).strip() == ""


# --- scopes ---------------------------------------------------------------------------------


def _scope_post(**overrides):
    data = {
        "name": "Disputes: refunds over 100 need approval",
        "description": "",
        "definition": "",
        "agent": "",
        "agent_group": "",
        "action_type": "",
        "effect": "require_approval",
        "conditions_text": "amount > 100",
        "approval_timeout_minutes": "15",
        "on_timeout": "fallback",
        "escalate_to": "",
        "reason": "Tighter control on disputes",
    }
    data.update(overrides)
    return data


def test_admin_creates_a_scope_with_history_and_a_governance_signal(client, admin_user, admin2):
    from journeys.events import governance_changed
    from journeys.models import ActionType
    from review.models import GovernanceChange
    from review.services.governance import governance_approve

    seen = []
    governance_changed.connect(lambda **kw: seen.append(kw), weak=False, dispatch_uid="test-scope-signal")
    try:
        refund_type = ActionType.objects.get(key="issue_refund")
        response = _login(client, admin_user).post(
            reverse("review_scope_create"), _scope_post(action_type=refund_type.pk)
        )
        # A rule that may allow something waits for a second admin.
        assert not PermissionScope.objects.filter(name="Disputes: refunds over 100 need approval").exists()
        pending = GovernanceChange.objects.get(status="pending")
        governance_approve(change_id=pending.pk, user=admin2)
    finally:
        governance_changed.disconnect(dispatch_uid="test-scope-signal")
    assert response.status_code == 302
    scope = PermissionScope.objects.get(name="Disputes: refunds over 100 need approval")
    assert scope.conditions == [{"param": "amount", "op": ">", "value": "100"}]
    change = ScopeChange.objects.get(target_id=scope.pk, target=ScopeChange.Target.SCOPE)
    assert change.before is None and change.after["effect"] == "require_approval"
    assert change.actor == admin2 and change.reason.startswith("Tighter control on disputes (requested by admin")
    assert [kw["kind"] for kw in seen] == ["governance_requested", "scope_change", "governance_approved"]
    assert seen[1]["after"]["name"] == scope.name


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"conditions_text": "amount is 5"}, "write parameter, operator, value"),
        ({"conditions_text": "amount <== 5"}, "is not a number"),
        ({"conditions_text": "colour == red"}, "has no parameter"),
        ({"conditions_text": "reason > 5"}, "is not a number"),
        ({"conditions_text": "amount <= lots"}, "is not a number"),
        ({"reason": ""}, "Say why you change the rule"),
        ({"effect": "maybe"}, "Select a valid choice"),
        ({"approval_timeout_minutes": "0"}, "greater than or equal to 1"),
        ({"name": "Card blocks are allowed"}, "already exists"),
        (
            {"on_timeout": "escalate", "escalate_to": "compliance-team", "definition": "fee_refund"},
            "Compliance may not approve actions on Fee refund",
        ),
    ],
)
def test_scope_form_rejects_bad_input_with_a_clear_error(client, admin_user, overrides, error):
    from django.contrib.auth.models import Group

    from journeys.models import ActionType, JourneyDefinition

    if overrides.get("escalate_to") == "compliance-team":
        overrides = {
            **overrides,
            "escalate_to": Group.objects.get(name="Compliance").pk,
            "definition": JourneyDefinition.objects.get(key=overrides["definition"]).pk,
        }
    data = _scope_post(action_type=ActionType.objects.get(key="issue_refund").pk, **overrides)
    response = _login(client, admin_user).post(reverse("review_scope_create"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert (
        not PermissionScope.objects.filter(name=data["name"], description="")
        .exclude(name="Card blocks are allowed")
        .exists()
    )


def test_editing_a_scope_keeps_before_and_after(client, admin_user, admin2):
    from review.models import GovernanceChange
    from review.services.governance import governance_approve

    scope = PermissionScope.objects.get(name="Refunds up to 35.00 are automatic")
    page = _login(client, admin_user).get(reverse("review_scope_edit", args=[scope.pk]))
    assert "amount &lt;= 35.00" in page.content.decode()
    data = _scope_post(
        name=scope.name,
        action_type=scope.action_type_id,
        effect="allow",
        conditions_text="amount <= 50.00",
        reason="Raise the automatic tier",
    )
    assert client.post(reverse("review_scope_edit", args=[scope.pk]), data).status_code == 302
    assert not ScopeChange.objects.filter(target_id=scope.pk).exists()  # widening: waits
    governance_approve(change_id=GovernanceChange.objects.get(target_id=scope.pk).pk, user=admin2)
    change = ScopeChange.objects.filter(target_id=scope.pk).latest("id")
    assert change.before["conditions"][0]["value"] == "35.00"
    assert change.after["conditions"][0]["value"] == "50.00"


def test_preview_shows_how_recent_proposals_would_be_decided_and_saves_nothing(client, admin_user, agent):
    journey = start("fee_refund", customer="CUST-00001")
    for amount in ("20.00", "40.00", "45.00"):
        refund(journey, amount, agent=agent)
    scope = PermissionScope.objects.get(name="Refunds over 35.00 up to 500.00 need one approver")
    # Narrowing the approval tier leaves 35.01 to 50.00 without a rule: the preview shows they
    # would be denied, before anything is saved.
    data = _scope_post(
        name=scope.name,
        action_type=scope.action_type_id,
        effect="require_approval",
        conditions_text="amount > 50.00\namount <= 500.00",
        reason="Narrow the tier",
        preview="1",
    )
    response = _login(client, admin_user).post(reverse("review_scope_edit", args=[scope.pk]), data)
    assert response.status_code == 200
    preview = response.context["preview"]
    assert len(preview["rows"]) == 3
    assert preview["changed"] == 2
    changed = {row["proposal"].params["amount"]: row["new"].effect for row in preview["rows"] if row["changed"]}
    assert changed == {"40.00": "deny", "45.00": "deny"}
    assert "2 of 3 would be decided differently" in response.content.decode()
    scope.refresh_from_db()
    assert scope.conditions[0]["value"] == "35.00"
    assert not ScopeChange.objects.filter(target_id=scope.pk).exists()


def test_disabling_a_scope_needs_a_reason_and_is_recorded(client, admin_user, admin2):
    from review.models import GovernanceChange
    from review.services.governance import governance_approve

    scope = PermissionScope.objects.get(name="Card blocks are allowed")
    _login(client, admin_user)
    response = client.post(reverse("review_scope_toggle", args=[scope.pk]), {"enabled": "0", "reason": ""}, follow=True)
    assert "Say why" in response.content.decode()
    assert PermissionScope.objects.get(pk=scope.pk).is_enabled
    client.post(reverse("review_scope_toggle", args=[scope.pk]), {"enabled": "0", "reason": "Incident 42"})
    # Disabling a rule may let a laxer one win: it waits for a second admin.
    assert PermissionScope.objects.get(pk=scope.pk).is_enabled
    governance_approve(change_id=GovernanceChange.objects.get(target_id=scope.pk).pk, user=admin2)
    assert not PermissionScope.objects.get(pk=scope.pk).is_enabled
    change = ScopeChange.objects.get(target_id=scope.pk)
    assert change.change == ScopeChange.Change.DISABLED
    assert (change.before["is_enabled"], change.after["is_enabled"]) == (True, False)


def test_limits_are_edited_with_validation_and_history(client, admin_user):
    limit = CumulativeLimit.objects.get(name="Card blocks per agent: 200 an hour")
    _login(client, admin_user)
    data = {
        "name": limit.name,
        "definition": "",
        "action_type": limit.action_type_id,
        "measure": "amount",
        "subject": "proposer",
        "maximum": "20",
        "window_minutes": "60",
        "effect_when_exceeded": "require_approval",
        "reason": "try",
    }
    bad = client.post(reverse("review_limit_edit", args=[limit.pk]), data)
    assert bad.status_code == 400 and "carries no amount" in bad.content.decode()
    data.update(measure="count", maximum="10", reason="Fewer blocks per hour")
    assert client.post(reverse("review_limit_edit", args=[limit.pk]), data).status_code == 302
    change = ScopeChange.objects.get(target=ScopeChange.Target.LIMIT, target_id=limit.pk)
    assert (change.before["maximum"], change.after["maximum"]) == ("200.00", "10.00")


def test_compliance_reads_scopes_but_cannot_change_them(client, compliance):
    _login(client, compliance)
    page = client.get(reverse("review_scopes"))
    assert page.status_code == 200
    assert "Refunds over 5,000.00 are denied" in page.content.decode()
    assert "New scope" not in page.content.decode()
    scope = PermissionScope.objects.first()
    assert client.get(reverse("review_scope_create")).status_code == 403
    assert (
        client.post(reverse("review_scope_toggle", args=[scope.pk]), {"enabled": "0", "reason": "x"}).status_code == 403
    )
    assert PermissionScope.objects.get(pk=scope.pk).is_enabled


def test_supervisors_and_outsiders_do_not_reach_the_scope_pages(client, supervisor, outsider):
    for user in (supervisor, outsider):
        _login(client, user)
        assert client.get(reverse("review_scopes")).status_code == 404
        assert client.get(reverse("review_scope_create")).status_code == 404


# --- after-the-fact review ------------------------------------------------------------------


@pytest.fixture
def sample(demo, agent, settings):
    settings.HANDOFF = {**settings.HANDOFF, "REVIEW_SAMPLE_SHARE": 1.0}
    proposal = refund(start("card_dispute", customer="CUST-00001"), "20.00", agent=agent)
    return ReviewSample.objects.get(proposal=proposal)


def test_a_supervisor_marks_a_sample_fine_or_wrong(client, supervisor, sample):
    _login(client, supervisor)
    page = client.get(reverse("review_samples"))
    assert f"sample-{sample.pk}" in page.content.decode()
    response = client.post(
        reverse("review_sample_mark", args=[sample.pk]), {"verdict": "wrong", "note": ""}, follow=True
    )
    assert "Say what was wrong" in response.content.decode()
    client.post(reverse("review_sample_mark", args=[sample.pk]), {"verdict": "wrong", "note": "Fee was valid"})
    sample.refresh_from_db()
    assert (sample.verdict, sample.note, sample.reviewed_by) == ("wrong", "Fee was valid", supervisor)
    recorded = sample.proposal.journey.events.get(kind="annotation", data__review_sample=sample.pk)
    assert recorded.actor_user == supervisor and recorded.data["verdict"] == "wrong"
    assert "marked wrong: Fee was valid" in recorded.summary
    again = client.post(reverse("review_sample_mark", args=[sample.pk]), {"verdict": "fine"}, follow=True)
    assert "Already marked wrong by supervisor" in again.content.decode()


def test_compliance_reads_samples_but_cannot_mark_them(client, compliance, sample):
    _login(client, compliance)
    assert f"sample-{sample.pk}" in client.get(reverse("review_samples")).content.decode()
    assert client.post(reverse("review_sample_mark", args=[sample.pk]), {"verdict": "fine"}).status_code == 404


def test_a_foreign_team_neither_sees_nor_marks_samples(client, supervisor2, sample):
    _login(client, supervisor2)
    assert f"sample-{sample.pk}" not in client.get(reverse("review_samples")).content.decode()
    assert client.post(reverse("review_sample_mark", args=[sample.pk]), {"verdict": "fine"}).status_code == 404


def test_navigation_fits_the_role(client, supervisor, compliance, admin_user, outsider):
    def labels(user):
        _login(client, user)
        return [item["label"] for item in client.get(reverse("journey_list")).context["nav_items"]]

    assert {"Approvals", "Review samples"} <= set(labels(supervisor)) and "Scopes" not in labels(supervisor)
    assert "Approvals" not in labels(compliance) and "Scopes" in labels(compliance)
    assert {"Approvals", "Scopes", "Review samples"} <= set(labels(admin_user))


def test_every_decision_event_is_kept_on_the_journey(supervisor, pending):
    from review.services import proposal_approve

    proposal_approve(proposal_id=pending.pk, user=supervisor)
    kinds = list(pending.events.order_by("id").values_list("kind", flat=True))
    assert kinds == [Event.Kind.ACTION_PROPOSED, Event.Kind.ACTION_DECIDED, Event.Kind.ACTION_APPROVED]


def test_previewing_a_new_scope_shows_its_effect_and_creates_nothing(client, admin_user, agent):
    from journeys.models import ActionType, JourneyDefinition

    journey = start("fee_refund", customer="CUST-00002")
    refund(journey, "20.00", agent=agent)
    _login(client, admin_user)
    assert client.get(reverse("review_scope_create")).status_code == 200
    assert client.get(reverse("review_limit_create")).status_code == 200
    data = _scope_post(
        name="Fee refunds frozen",
        effect="deny",
        conditions_text="",
        action_type=ActionType.objects.get(key="issue_refund").pk,
        definition=JourneyDefinition.objects.get(key="fee_refund").pk,
        preview="1",
    )
    response = client.post(reverse("review_scope_create"), data)
    assert response.status_code == 200
    rows = response.context["preview"]["rows"]
    assert [(r["now_effect"], r["new"].effect, r["new"].rule) for r in rows] == [
        ("allow", "deny", "Fee refunds frozen")
    ]
    assert not PermissionScope.objects.filter(name="Fee refunds frozen").exists()


def test_limit_form_refuses_an_empty_window(client, admin_user):
    limit = CumulativeLimit.objects.get(name="Card blocks per agent: 200 an hour")
    data = {
        "name": limit.name,
        "definition": "",
        "action_type": limit.action_type_id,
        "measure": "count",
        "subject": "proposer",
        "maximum": "20",
        "window_minutes": "0",
        "effect_when_exceeded": "deny",
        "reason": "try",
    }
    response = _login(client, admin_user).post(reverse("review_limit_edit", args=[limit.pk]), data)
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    assert CumulativeLimit.objects.get(pk=limit.pk).effect_when_exceeded == "require_approval"


def test_a_scope_may_escalate_to_a_team_that_approves_on_its_definition(client, admin_user, admin2):
    from django.contrib.auth.models import Group

    from journeys.models import ActionType, JourneyDefinition
    from review.models import GovernanceChange
    from review.services.governance import governance_approve

    data = _scope_post(
        name="Fee refunds escalate to servicing",
        on_timeout="escalate",
        escalate_to=Group.objects.get(name="Servicing team").pk,
        definition=JourneyDefinition.objects.get(key="fee_refund").pk,
        action_type=ActionType.objects.get(key="issue_refund").pk,
    )
    assert _login(client, admin_user).post(reverse("review_scope_create"), data).status_code == 302
    governance_approve(change_id=GovernanceChange.objects.get(status="pending").pk, user=admin2)
    assert PermissionScope.objects.get(name="Fee refunds escalate to servicing").escalate_to.name == "Servicing team"


def test_the_scope_form_hides_approval_fields_for_rules_that_do_not_wait_for_approvers(client, admin_user):
    allow = PermissionScope.objects.get(name="Refunds up to 35.00 are automatic")
    page = _login(client, admin_user).get(reverse("review_scope_edit", args=[allow.pk])).content.decode()
    for name in ("approval_timeout_minutes", "on_timeout", "escalate_to"):
        assert re.search(rf'<div class="field" data-applies="approval"[^>]* hidden>\s*<label for="id_{name}"', page), (
            name
        )
    tier = PermissionScope.objects.get(name="Refunds over 35.00 up to 500.00 need one approver")
    page = client.get(reverse("review_scope_edit", args=[tier.pk])).content.decode()
    assert re.search(r'data-applies="approval"(?! hidden)[^>]*>\s*<label for="id_approval_timeout_minutes"', page)


def test_the_preview_can_list_only_the_proposals_whose_decision_changes(client, admin_user, agent):
    journey = start("fee_refund", customer="CUST-00001")
    for amount in ("20.00", "40.00", "45.00"):
        refund(journey, amount, agent=agent)
    scope = PermissionScope.objects.get(name="Refunds over 35.00 up to 500.00 need one approver")
    data = _scope_post(
        name=scope.name,
        action_type=scope.action_type_id,
        effect="require_approval",
        conditions_text="amount > 50.00\namount <= 500.00",
        reason="Narrow the tier",
        preview="1",
        changed_only="on",
    )
    html = _login(client, admin_user).post(reverse("review_scope_edit", args=[scope.pk]), data).content.decode()
    section = html[html.index('id="preview"') : html.index("</section>", html.index('id="preview"'))]
    assert "2 of 3 would be decided differently" in section
    assert section.count('<tr class="changed">') == 2 and "20.00" not in section


def test_scope_history_shows_conditions_as_a_sentence(client, admin_user, admin2):
    from review.models import GovernanceChange
    from review.services.governance import governance_approve

    scope = PermissionScope.objects.get(name="Refunds up to 35.00 are automatic")
    data = _scope_post(
        name=scope.name,
        action_type=scope.action_type_id,
        effect="allow",
        conditions_text="amount <= 50.00",
        reason="Raise the automatic tier",
    )
    _login(client, admin_user).post(reverse("review_scope_edit", args=[scope.pk]), data)
    governance_approve(change_id=GovernanceChange.objects.get(target_id=scope.pk).pk, user=admin2)
    page = client.get(reverse("review_scope_edit", args=[scope.pk])).content.decode()
    history = page[page.index("History of this scope") :]
    assert "when amount ≤ 35.00" in history and "when amount ≤ 50.00" in history
    assert "{&#x27;param&#x27;" not in history


def test_the_escalation_team_shows_only_when_the_timeout_escalates(client, admin_user):
    scope = PermissionScope.objects.get(name="Refunds over 35.00 up to 500.00 need one approver")
    data = _scope_post(name=scope.name, action_type=scope.action_type_id, on_timeout="escalate", preview="1")
    page = _login(client, admin_user).post(reverse("review_scope_edit", args=[scope.pk]), data).content.decode()
    assert re.search(r'data-applies-escalation>\s*<label for="id_escalate_to"', page)
    data["on_timeout"] = "fallback"
    page = client.post(reverse("review_scope_edit", args=[scope.pk]), data).content.decode()
    assert re.search(r'data-applies-escalation hidden>\s*<label for="id_escalate_to"', page)
