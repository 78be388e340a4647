"""Action parameters are validated with messages a person can act on."""

from __future__ import annotations

import pytest

from journeys.actions import ActionParamsError, validate_params


def test_amounts_are_normalised_to_two_decimals():
    clean = validate_params("issue_refund", {"account": "ACC-1", "amount": "12.5", "reason": "fee reversal"})
    assert clean["amount"] == "12.50"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"account": "ACC-1", "amount": "abc", "reason": "x"}, "must be an amount"),
        ({"account": "ACC-1", "amount": "-3", "reason": "x"}, "at least 0.01"),
        ({"account": "ACC-1", "amount": "1.234", "reason": "x"}, "more than two decimals"),
        ({"account": "ACC-1", "amount": "NaN", "reason": "x"}, "finite"),
        ({"amount": "10", "reason": "x"}, "needs the parameter 'account'"),
        ({"account": "ACC-1", "amount": "10", "reason": "x", "bonus": 1}, "Unknown parameter"),
    ],
)
def test_bad_refund_parameters_are_refused_with_a_reason(params, message):
    with pytest.raises(ActionParamsError, match=message):
        validate_params("issue_refund", params)


def test_choices_and_booleans_are_checked():
    with pytest.raises(ActionParamsError, match="one of"):
        validate_params("block_card", {"card": "tok", "reason": "bored"})
    with pytest.raises(ActionParamsError, match="true or false"):
        validate_params("order_card", {"account": "A", "address": "x", "expedited": "maybe"})
    assert validate_params("order_card", {"account": "A", "address": "x", "expedited": "yes"})["expedited"] is True


def test_unknown_action_type_is_refused():
    with pytest.raises(ActionParamsError, match="Unknown action type"):
        validate_params("launch_rocket", {})
