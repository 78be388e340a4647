"""Two demo admins work a governance change in a real browser: one asks, the other approves."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from review.models import GovernanceChange, PermissionScope

pytestmark = [pytest.mark.browser]

RULE = "Refunds up to 35.00 are automatic"


def test_admin_raises_an_automatic_tier_and_admin2_approves_it(demo, login_page):
    scope = PermissionScope.objects.get(name=RULE)
    maker = login_page("admin")
    maker.goto(f"/review/scopes/{scope.pk}/")
    maker.get_by_label("Conditions").fill("amount <= 50.00")
    maker.get_by_label("Reason for this change").fill("Fewer approvals for small refunds")
    maker.get_by_role("button", name="Save").click()
    expect(maker.get_by_role("status")).to_contain_text("waits for a second admin")
    expect(maker.locator("#pending-governance")).to_contain_text(RULE)
    assert PermissionScope.objects.get(pk=scope.pk).conditions[0]["value"] == "35.00"

    # The maker sees the request but cannot approve it.
    maker.get_by_role("link", name="Governance changes").click()
    maker.locator("#pending-changes").get_by_role("link", name=RULE, exact=False).click()
    expect(maker.locator("#decide-change")).to_contain_text("a second admin must approve it")
    expect(maker.get_by_role("button", name="Approve and apply")).to_have_count(0)

    checker = login_page("admin2")
    checker.get_by_role("link", name="Governance changes").click()
    checker.locator("#pending-changes").get_by_role("link", name=RULE, exact=False).click()
    expect(checker.locator("#before-after")).to_contain_text("35.00")
    expect(checker.locator("#before-after")).to_contain_text("50.00")
    expect(checker.locator("#preview")).to_be_visible()
    checker.get_by_role("button", name="Approve and apply").click()
    expect(checker.get_by_role("status")).to_contain_text("Approved and applied")
    assert PermissionScope.objects.get(pk=scope.pk).conditions[0]["value"] == "50.00"
    change = GovernanceChange.objects.get()
    assert (change.status, change.maker.username, change.checker.username) == ("approved", "admin", "admin2")
