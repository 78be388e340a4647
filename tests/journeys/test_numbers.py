"""Numbers in action parameters never crash: any text, float or integer becomes either a clean
value inside its bounds or an ``ActionParamsError`` a person can read — on the coercion itself
(property-based, with hypothesis) and through the two forms that take numbers from people."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from journeys.actions import MAX_AMOUNT, MAX_INT, ActionParamsError, validate_params
from journeys.control import journey_take_over
from journeys.models import ProposedAction
from journeys.services import journey_start

HOSTILE = [
    "1e30",
    "1E+30",
    "NaN",
    "-nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e-400",
    "9" * 5000,
    "0." + "0" * 5000 + "1",
    "-0",
    "١٢",  # Arabic-Indic digits, which Decimal() would accept
    "1_000",
    "12,50",
    "0x10",
    "10000000000.00",
    " ",
    "\x00",
]

numeric_inputs = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789+-.eE_ ", max_size=40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)


def _refund(amount):
    return {"account": "ACC-000001", "amount": amount, "reason": "fee reversal"}


@settings(max_examples=400, deadline=None)
@given(value=numeric_inputs)
@example(value="1e30")
@example(value="-0")
@example(value="1e-400")
@example(value="9" * 5000)
def test_an_amount_is_either_clean_and_bounded_or_a_readable_error(value):
    try:
        clean = validate_params("issue_refund", _refund(value))
    except ActionParamsError as exc:
        assert "issue_refund" in str(exc)
        return
    amount = Decimal(clean["amount"])
    assert clean["amount"] == f"{amount:.2f}"
    assert Decimal("0.01") <= amount <= MAX_AMOUNT
    # Normalised once, it stays the same: coercion is idempotent.
    assert validate_params("issue_refund", _refund(clean["amount"]))["amount"] == clean["amount"]


@settings(max_examples=400, deadline=None)
@given(value=numeric_inputs)
def test_an_optional_amount_without_a_minimum_never_crashes_and_has_no_negative_zero(value):
    params = {"customer": "CUST-00001", "kind": "dispute", "amount": value}
    try:
        clean = validate_params("open_case", params)
    except ActionParamsError:
        return
    if "amount" in clean:
        amount = Decimal(clean["amount"])
        assert abs(amount) <= MAX_AMOUNT
        assert not clean["amount"].startswith("-0.00")


@settings(max_examples=300, deadline=None)
@given(value=numeric_inputs)
def test_a_whole_number_is_either_clean_and_bounded_or_a_readable_error(value):
    try:
        clean = validate_params("lookup_fees", {"account": "ACC-000001", "days": value})
    except ActionParamsError as exc:
        assert "lookup_fees.days" in str(exc)
        return
    if "days" in clean:
        assert isinstance(clean["days"], int) and 1 <= clean["days"] <= min(3650, MAX_INT)


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(min_value=1, max_value=int(MAX_AMOUNT * 100)))
def test_every_amount_in_range_is_accepted_as_written(cents):
    text = f"{Decimal(cents) / 100:.2f}"
    assert validate_params("issue_refund", _refund(text))["amount"] == text


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_amounts_are_refused_with_a_reason(value):
    with pytest.raises(ActionParamsError, match=r"issue_refund\.amount"):
        validate_params("issue_refund", _refund(value))


# --- through the forms ------------------------------------------------------------------------


@pytest.fixture
def controlled(demo, supervisor):
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00001", request={})
    journey_take_over(journey_id=journey.pk, user=supervisor)
    return journey


TYPED = [v for v in HOSTILE if v.strip() and "\x00" not in v]  # what a person can type in a form


@pytest.mark.parametrize("value", TYPED)
def test_the_propose_form_answers_hostile_amounts_with_a_form_error(client, supervisor, controlled, value):
    client.force_login(supervisor)
    response = client.post(
        reverse("journey_propose", args=[controlled.pk]),
        {
            "action": "issue_refund",
            "issue_refund-account": "ACC-000001",
            "issue_refund-amount": value,
            "issue_refund-reason": "goodwill",
            "explanation": "goodwill",
        },
    )
    assert response.status_code == 400, response.status_code
    assert "Amount " in response.content.decode()  # the field's error, in words
    assert not ProposedAction.objects.filter(journey=controlled).exists()


@pytest.fixture
def pending_refund(demo, agent):
    from tests.review.helpers import refund, start

    return refund(start("card_dispute", customer="CUST-00001"), "120.00", agent=agent)


@pytest.mark.parametrize("value", TYPED)
def test_edit_and_approve_answers_hostile_amounts_with_a_form_error(client, supervisor, pending_refund, value):
    client.force_login(supervisor)
    response = client.post(
        reverse("review_edit", args=[pending_refund.pk]),
        {**pending_refund.params, "amount": value, "edit_reason": "try a number"},
    )
    assert response.status_code == 400, response.status_code
    page = response.content.decode()
    assert "issue_refund.amount" in page or "Ensure this value has at most 20 characters" in page
    proposal = ProposedAction.objects.get(pk=pending_refund.pk)
    assert proposal.status == ProposedAction.Status.PENDING and proposal.params["amount"] == "120.00"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet="0123456789+-.eEnaifNIF_ ", min_size=1, max_size=20))
def test_edit_and_approve_never_answers_500_for_any_numeric_text(client, supervisor, pending_refund, value):
    client.force_login(supervisor)
    response = client.post(
        reverse("review_edit", args=[pending_refund.pk]),
        {**pending_refund.params, "amount": value, "edit_reason": "try a number"},
    )
    assert response.status_code in (302, 400)
