"""The exception workbench pages, as allowed, read-only and foreign-team users."""

from __future__ import annotations

import pytest
from django.urls import reverse

from journeys.models import Event
from review.models import Annotation, ExceptionCase, Label

from .case_helpers import hand_over, new_journey

pytestmark = pytest.mark.django_db


@pytest.fixture
def card_group(demo):
    """Three low-confidence card disputes and one lone identity failure."""
    for n in (1, 2, 3):
        hand_over(new_journey(customer=f"CUST-0000{n}", step="classify"), "low_confidence")
    hand_over(new_journey(customer="CUST-00004", step="verify_identity"), "identity_not_verified")
    return ExceptionCase.objects.filter(kind="low_confidence").first().group


def test_workbench_ranks_groups_by_count(client, supervisor, card_group):
    client.force_login(supervisor)
    response = client.get(reverse("cases:workbench"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 ×" in html and "1 ×" in html  # noqa: RUF001
    assert html.index("3 ×") < html.index("1 ×")  # noqa: RUF001
    assert "card dispute / classify / <b>low confidence</b>" in html


def test_workbench_filters_by_definition_and_shows_resolved_groups_on_request(client, supervisor, card_group):
    from review.cases.services import group_resolve

    group_resolve(cases=list(card_group.cases.all()), resolution="fixed", note="", actor=supervisor)
    client.force_login(supervisor)
    html = client.get(reverse("cases:workbench")).content.decode()
    assert "low confidence" not in html and "identity not verified" in html
    html = client.get(reverse("cases:workbench"), {"show": "all"}).content.decode()
    assert "low confidence" in html and "0 unresolved" in html
    html = client.get(reverse("cases:workbench"), {"definition": "lost_card"}).content.decode()
    assert "card dispute" not in html
    assert client.get(reverse("cases:workbench"), {"definition": "fee_refund"}).status_code == 200


def test_workbench_hides_other_teams_groups(client, supervisor2, card_group):
    client.force_login(supervisor2)
    html = client.get(reverse("cases:workbench")).content.decode()
    assert "card dispute" not in html
    assert "No unresolved exceptions" in html


def test_foreign_team_gets_404_on_group_case_and_actions(client, supervisor2, outsider, card_group):
    case = card_group.cases.first()
    for user in (supervisor2, outsider):
        client.force_login(user)
        assert client.get(reverse("cases:group", args=[card_group.pk])).status_code == 404
        assert client.get(reverse("cases:case", args=[case.pk])).status_code == 404
        response = client.post(reverse("cases:group_action", args=[card_group.pk, "resolve"]), {"resolution": "fixed"})
        assert response.status_code == 404
        response = client.post(reverse("cases:case_action", args=[case.pk, "annotate"]), {"note": "x"})
        assert response.status_code == 404
    assert not ExceptionCase.objects.filter(status=ExceptionCase.Status.RESOLVED).exists()


def test_compliance_reads_cases_but_cannot_change_them(client, compliance, card_group):
    client.force_login(compliance)
    page = client.get(reverse("cases:group", args=[card_group.pk]))
    assert page.status_code == 200
    assert 'data-form="resolve"' not in page.content.decode()
    case = card_group.cases.first()
    assert client.get(reverse("cases:case", args=[case.pk])).status_code == 200
    response = client.post(reverse("cases:group_action", args=[card_group.pk, "resolve"]), {"resolution": "fixed"})
    assert response.status_code == 403
    response = client.post(reverse("cases:case_action", args=[case.pk, "annotate"]), {"note": "mine"})
    assert response.status_code == 403
    assert not Annotation.objects.exists()


def test_supervisor_annotates_assigns_and_resolves_a_whole_group(client, supervisor, card_group):
    client.force_login(supervisor)
    label = Label.objects.get(key="agent-wrong")
    url = reverse("cases:group_action", args=[card_group.pk, "annotate"])
    response = client.post(url, {"labels": [label.pk], "note": "Same misclassification"})
    assert response.status_code == 302
    assert Annotation.objects.filter(case__group=card_group, labels=label).count() == 3

    response = client.post(reverse("cases:group_action", args=[card_group.pk, "assign"]), {"assignee": supervisor.pk})
    assert response.status_code == 302
    assert set(card_group.cases.values_list("status", flat=True)) == {ExceptionCase.Status.ASSIGNED}

    response = client.post(
        reverse("cases:group_action", args=[card_group.pk, "resolve"]),
        {"resolution": "agent_change", "note": "Confidence bar retuned"},
    )
    assert response.status_code == 302
    assert set(card_group.cases.values_list("resolution", flat=True)) == {"agent_change"}
    audit = Event.objects.filter(kind=Event.Kind.ANNOTATION, actor_user=supervisor)
    assert audit.filter(data__action="resolve").count() == 3
    assert audit.filter(data__action="annotate").count() == 3


def test_bad_input_gets_a_form_error_not_a_500(client, supervisor, supervisor2, card_group):
    client.force_login(supervisor)
    case = card_group.cases.first()
    response = client.post(reverse("cases:case_action", args=[case.pk, "resolve"]), {"resolution": "nonsense"})
    assert response.status_code == 400
    assert "Resolution: “nonsense” is not one of the choices you may see" in response.content.decode()
    response = client.post(reverse("cases:case_action", args=[case.pk, "annotate"]), {"note": " "})
    assert response.status_code == 400
    assert "Pick a label or write a note" in response.content.decode()
    # Someone outside the definition's teams cannot be made the assignee.
    response = client.post(reverse("cases:case_action", args=[case.pk, "assign"]), {"assignee": supervisor2.pk})
    assert response.status_code == 400
    assert client.post(reverse("cases:case_action", args=[case.pk, "explode"]), {}).status_code == 404


def test_resolving_a_resolved_case_says_so(client, supervisor, card_group):
    client.force_login(supervisor)
    case = card_group.cases.first()
    url = reverse("cases:case_action", args=[case.pk, "resolve"])
    assert client.post(url, {"resolution": "fixed"}).status_code == 302
    response = client.post(url, {"resolution": "duplicate"})
    assert response.status_code == 409
    assert "already resolved" in response.content.decode()
    case.refresh_from_db()
    assert case.resolution == "fixed"


def test_annotating_a_timeline_event_from_the_journey_page(client, supervisor, compliance, supervisor2, demo):
    journey = new_journey()
    event = journey.events.first()
    client.force_login(supervisor)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert reverse("cases:event_annotate", args=[event.pk]) in page
    assert 'data-form="flag"' in page
    url = reverse("cases:event_annotate", args=[event.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"labels": [Label.objects.get(key="customer-confusion").pk], "note": "Unclear"})
    assert response.status_code == 302
    annotation = Annotation.objects.get(event=event)
    assert annotation.audit_event.kind == Event.Kind.ANNOTATION
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert "Customer confusion" in page

    client.force_login(compliance)
    page = client.get(reverse("journey_detail", args=[journey.pk])).content.decode()
    assert url not in page
    assert client.post(url, {"note": "x"}).status_code == 403
    client.force_login(supervisor2)
    assert client.get(url).status_code == 404


def test_flagging_a_journey_from_its_page(client, supervisor, compliance, demo):
    journey = new_journey()
    url = reverse("cases:journey_flag", args=[journey.pk])
    client.force_login(compliance)
    assert client.post(url, {"note": "Looks off"}).status_code == 403
    client.force_login(supervisor)
    assert client.post(url, {"note": ""}).status_code == 400
    response = client.post(url, {"note": "Looks off"})
    case = ExceptionCase.objects.get(journey=journey)
    assert response.status_code == 302 and response.url == reverse("cases:case", args=[case.pk])
    assert case.kind == "flagged"


def test_only_admins_edit_the_label_taxonomy(client, supervisor, admin_user, outsider, demo):
    client.force_login(outsider)
    assert client.get(reverse("cases:labels")).status_code == 404
    client.force_login(supervisor)
    assert client.get(reverse("cases:labels")).status_code == 200
    assert client.post(reverse("cases:labels"), {"name": "Mine"}).status_code == 403
    label = Label.objects.get(key="policy-gap")
    assert client.post(reverse("cases:label_edit", args=[label.pk]), {f"l{label.pk}-name": "X"}).status_code == 403

    client.force_login(admin_user)
    assert client.post(reverse("cases:labels"), {"name": "Wrong amount"}).status_code == 302
    assert Label.objects.filter(name="Wrong amount").exists()
    assert client.post(reverse("cases:labels"), {"name": "wrong amount"}).status_code == 400
    response = client.post(
        reverse("cases:label_edit", args=[label.pk]),
        {f"l{label.pk}-name": "Policy gap", f"l{label.pk}-description": "d"},
    )
    assert response.status_code == 302
    label.refresh_from_db()
    assert label.is_active is False  # the unchecked box retires it
    assert label.description == "d"


def test_navigation_shows_exceptions_and_metrics(client, supervisor, outsider):
    client.force_login(supervisor)
    html = client.get(reverse("cases:workbench")).content.decode()
    assert reverse("metrics:overview") in html and 'aria-current="page">Exceptions' in html
    client.force_login(outsider)
    assert reverse("cases:workbench") not in client.get(reverse("no_access")).content.decode()


def test_assign_and_resolve_disappear_once_every_case_is_resolved(client, supervisor, card_group):
    from review.cases.services import group_resolve

    client.force_login(supervisor)
    html = client.get(reverse("cases:group", args=[card_group.pk])).content.decode()
    assert 'data-form="assign"' in html and 'data-form="resolve"' in html
    group_resolve(cases=list(card_group.cases.all()), resolution="fixed", note="", actor=supervisor)
    for url in (
        reverse("cases:group", args=[card_group.pk]),
        reverse("cases:case", args=[card_group.cases.first().pk]),
    ):
        html = client.get(url).content.decode()
        assert 'data-form="assign"' not in html and 'data-form="resolve"' not in html
        assert 'data-form="annotate"' in html  # notes may still be added
        assert "nothing left to assign or resolve" in html
    # A stale tab still posting is told why.
    response = client.post(reverse("cases:case_action", args=[card_group.cases.first().pk, "assign"]), {"assignee": 1})
    assert response.status_code == 409 and "already resolved" in response.content.decode()


def test_events_around_a_case_read_newest_first_like_the_timeline(client, supervisor, card_group):
    client.force_login(supervisor)
    case = card_group.cases.first()
    events = client.get(reverse("cases:case", args=[case.pk])).context["events"]
    ids = [event.pk for event in events]
    assert len(ids) > 1 and ids == sorted(ids, reverse=True)


def test_forms_on_one_page_never_share_an_element_id(client, supervisor, card_group):
    import re
    from collections import Counter

    client.force_login(supervisor)
    for url in (
        reverse("cases:group", args=[card_group.pk]),
        reverse("cases:case", args=[card_group.cases.first().pk]),
    ):
        ids = Counter(re.findall(r'\sid="([^"]+)"', client.get(url).content.decode()))
        assert not [i for i, n in ids.items() if n > 1], url
