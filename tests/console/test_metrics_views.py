"""The metrics page and its CSV export, as allowed, read-only and foreign-team users."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from .metric_data import build_hand_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def hand_data(demo, supervisor2, settings):
    return build_hand_data(settings=settings, supervisor2=supervisor2)


DAY_QUERY = {
    "definition": "fee_refund",
    "since": "2026-03-02",
    "until": "2026-03-02",
    "compare_since": "2026-03-01",
    "compare_until": "2026-03-01",
}


def test_the_servicing_supervisor_sees_charts_data_for_fee_refunds(client, supervisor2, hand_data):
    client.force_login(supervisor2)
    response = client.get(reverse("metrics:overview"), DAY_QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    for canvas in ("chart-trend", "chart-funnel", "chart-groups", "chart-compare"):
        assert f'id="{canvas}"' in html
    charts = response.context["charts"]
    assert charts["trend"]["journeys"] == [5]
    assert charts["funnel"]["reached"][:3] == [5, 3, 1]
    assert sorted(charts["groups"]["counts"]) == [1, 1]
    assert charts["compare"]["current"][0] == 20.0  # containment, in %
    data = json.loads(html.split('id="metrics-data" type="application/json">')[1].split("</script>")[0])
    assert data == json.loads(json.dumps(charts))
    assert "20.0 %" in html  # containment tile
    assert 'nonce="' in html and "<script>" not in html  # CSP: only external scripts with a nonce


def test_compliance_reads_every_definition(client, compliance, hand_data):
    client.force_login(compliance)
    response = client.get(reverse("metrics:overview"), {**DAY_QUERY, "definition": ""})
    assert response.status_code == 200
    assert len(response.context["definitions"]) == 4
    assert response.context["metrics"].counters["journeys"] == 5
    by_definition = {row["definition"].key: row for row in response.context["metrics"].by_definition}
    assert by_definition["fee_refund"]["counters"]["journeys"] == 5
    assert by_definition["fee_refund"]["rates"]["containment_rate"] == pytest.approx(0.2)
    assert by_definition["card_dispute"]["counters"]["journeys"] == 0
    assert 'id="by-definition"' in response.content.decode()


def test_another_team_cannot_pick_a_definition_it_does_not_see(client, supervisor, outsider, hand_data):
    client.force_login(supervisor)
    response = client.get(reverse("metrics:overview"), DAY_QUERY)
    assert response.status_code == 400
    assert "Definition: “fee_refund” is not one of the choices you may see" in response.content.decode()
    mine = client.get(reverse("metrics:overview"), {**DAY_QUERY, "definition": ""})
    assert mine.context["metrics"].counters["journeys"] == 0  # the fee refunds are not theirs
    export = client.get(reverse("metrics:export"), DAY_QUERY)
    assert export.status_code == 400
    assert export.content.decode().startswith("Definition: ") and "Bad window" not in export.content.decode()
    client.force_login(outsider)
    assert client.get(reverse("metrics:overview")).status_code == 404
    assert client.get(reverse("metrics:export")).status_code == 404


def test_a_backwards_window_is_a_form_error(client, supervisor2, demo):
    client.force_login(supervisor2)
    response = client.get(reverse("metrics:overview"), {"since": "2026-03-05", "until": "2026-03-01"})
    assert response.status_code == 400
    assert "From: Must be on or before the last day (To)." in response.content.decode()
    response = client.get(reverse("metrics:overview"), {"since": "yesterday"})
    assert response.status_code == 400
    assert "From: “yesterday” is not a date; write it like 2026-03-01." in response.content.decode()
    export = client.get(reverse("metrics:export"), {"compare_until": "soon"})
    assert export.status_code == 400
    assert export.content.decode() == "Compare with, to: “soon” is not a date; write it like 2026-03-01.\n"


def test_durations_under_an_hour_read_in_minutes_and_seconds():
    from console.templatetags.metrics_tags import seconds

    assert seconds(81.8) == "1 min 22 s"
    assert seconds(42.25) == "42.2 s"
    assert seconds(120) == "2 min"
    assert seconds(3599.6) == "1 h"
    assert seconds(3725) == "1 h 2 min"


def test_the_default_page_shows_the_last_seven_days_against_the_seven_before(client, supervisor2, demo):
    client.force_login(supervisor2)
    response = client.get(reverse("metrics:overview"))
    assert response.status_code == 200
    metrics, previous = response.context["metrics"], response.context["previous"]
    assert len(metrics.window.days) == 7
    assert previous.window.until == metrics.window.since - (metrics.window.days[1] - metrics.window.days[0])


def test_csv_export_holds_both_windows_and_the_breakdowns(client, supervisor2, hand_data):
    client.force_login(supervisor2)
    response = client.get(reverse("metrics:export"), DAY_QUERY)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["section", "item", "metric", "unit"]
    by_key = {(r[0], r[1], r[2]): r for r in rows[1:]}
    assert by_key[("outcomes", "fee_refund", "containment_rate")][4:] == ["0.2000", ""]
    assert by_key[("outcomes", "fee_refund", "journeys")][4:] == ["5", "0"]
    assert by_key[("outcomes", "fee_refund", "override_frequency")][4] == "0.6667"
    assert by_key[("outcomes", "fee_refund", "resolution_p90")][4] == "1800.0000"
    assert by_key[("by step", "find_fee", "abandoned")][4] == "1"
    assert by_key[("by rule", "refunds above 5000 denied", "denied")][4] == "1"
    assert by_key[("by reviewer", "supervisor2", "decisions")][4] == "3"


def test_the_page_reads_roll_ups_not_the_event_log(client, supervisor2, hand_data):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from journeys.models import Event

    client.force_login(supervisor2)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("metrics:overview"), DAY_QUERY).status_code == 200
    event_table = Event._meta.db_table
    assert not [q["sql"] for q in queries if f'"{event_table}"' in q["sql"]]
    assert len(queries) < 60


def test_the_default_windows_are_shown_in_the_date_inputs(client, supervisor2, demo):
    client.force_login(supervisor2)
    response = client.get(reverse("metrics:overview"))
    window = response.context["metrics"].window
    html = response.content.decode()
    assert f'name="until" value="{window.until:%Y-%m-%d}"' in html
    assert f'name="since" value="{window.since:%Y-%m-%d}"' in html


def test_csv_export_defuses_formulas_in_free_text(client, supervisor2, hand_data):
    from console.metrics.rollups import rollup_rebuild
    from journeys.models import ProposedAction

    ProposedAction.objects.filter(status="denied").update(decision_rule='=HYPERLINK("http://x")')
    rollup_rebuild()
    client.force_login(supervisor2)
    rows = list(csv.reader(io.StringIO(client.get(reverse("metrics:export"), DAY_QUERY).content.decode())))
    rules = {r[1] for r in rows if r[0] == "by rule"}
    assert '\'=HYPERLINK("http://x")' in rules
    assert not any(cell.startswith("=") for row in rows for cell in row)
