"""The supervisor's view in a real browser: charts with data after the simulator ran, then an
exception group annotated and resolved."""

from __future__ import annotations

import pytest

from console.metrics.rollups import rollup_refresh
from demo.simulator import Simulator
from journeys.models import Agent, Journey
from review.models import Annotation, ExceptionCase

from ..conftest import drive_to_end

pytestmark = [pytest.mark.browser, pytest.mark.worker]

CHARTS = ["chart-trend", "chart-funnel", "chart-groups", "chart-compare"]


def test_supervisor_reads_the_charts_and_resolves_an_exception_group(celery_worker, agent, login_page):
    # Every classification comes back below the bar, so card disputes raise low-confidence cases.
    Agent.objects.filter(pk=agent.pk).update(config={"low_confidence_rate": 1.0})
    sim = Simulator(seed=5)
    for definition in ("card_dispute", "card_dispute", "lost_card"):
        journey = sim.open_journey(definition, persona="cooperative")
        journey.context["request"]["identity_ok"] = True
        Journey.objects.filter(pk=journey.pk).update(context=journey.context)
        drive_to_end(journey.pk)
    # Linked journeys a lost card may have opened run to their end too, so the figures hold still.
    for linked in Journey.objects.filter(parent__isnull=False):
        drive_to_end(linked.pk)
    rollup_refresh()
    group = ExceptionCase.objects.filter(kind="low_confidence").first().group
    # A lost card with suspicious activity opens a linked dispute, which may land here too.
    cases = group.cases.count()
    assert cases >= 2
    journeys = Journey.objects.count()

    page = login_page("supervisor")
    # Errors raised by the page's own scripts (the charts), e.g. something the CSP refused.
    # htmx's own indicator style is the shell's business and reported by its location.
    console_errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and "htmx" not in message.location.get("url", "")
            and console_errors.append(message.text)
        ),
    )
    page.click("nav.mainnav >> text=Metrics")
    for canvas in CHARTS:
        page.wait_for_selector(f"#{canvas}[data-rendered=true]")
    filled = page.evaluate(
        """(ids) => ids.map((id) => {
        const chart = Chart.getChart(document.getElementById(id));
        return chart.data.datasets.some((ds) => ds.data.some((v) => v !== null && v > 0));
    })""",
        CHARTS,
    )
    # Long group labels are wrapped onto lines, not clipped: each line fits, the axis leaves room.
    labels_fit = page.evaluate(
        """() => {
        const chart = Chart.getChart(document.getElementById("chart-groups"));
        const short = chart.data.labels.every((l) => [].concat(l).every((line) => line.length <= 26));
        return short && chart.scales.y.width < chart.width * 0.6;
    }"""
    )
    assert labels_fit
    assert filled == [True, True, True, True]
    assert console_errors == []
    assert page.locator("[data-metric=journeys] .tile-value").inner_text() == str(journeys)

    page.click("nav.mainnav >> text=Exceptions")
    page.click("a.group-link:has-text('low confidence')")
    assert page.locator("#open-count").inner_text() == str(cases)
    annotate = page.locator("form[data-form=annotate]")
    annotate.locator("label:has-text('Agent wrong') input").check()
    annotate.locator("textarea[name=note]").fill("The classifier is unsure of every dispute.")
    annotate.locator("button[type=submit]").click()
    page.wait_for_selector(f".msg.success:has-text('Annotated {cases} case')")

    resolve = page.locator("form[data-form=resolve]")
    resolve.locator("select[name=resolution]").select_option("agent_change")
    resolve.locator("textarea[name=note]").fill("Confidence bar retuned.")
    resolve.locator("button[type=submit]").click()
    page.wait_for_selector(f".msg.success:has-text('Resolved {cases} case')")
    assert page.locator("#open-count").inner_text() == "0"

    assert set(group.cases.values_list("status", "resolution")) == {("resolved", "agent_change")}
    assert Annotation.objects.filter(case__group=group, labels__key="agent-wrong").count() == cases
