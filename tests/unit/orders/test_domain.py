"""The order state machine table and the payment-token rule, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.orders.domain import (
    TERMINAL,
    TRANSITIONS,
    Action,
    CardNumberRejected,
    IllegalTransition,
    InvalidPaymentToken,
    Status,
    check_payment_token,
    next_status,
)


def test_the_table_is_the_lifecycle() -> None:
    assert next_status("placed", "pay") is Status.PAID
    assert next_status("paid", "fulfill") is Status.FULFILLING
    assert next_status("fulfilling", "complete") is Status.COMPLETED
    assert next_status("paid", "cancel") is Status.CANCELLED
    assert next_status("completed", "refund") is Status.REFUNDED
    assert {Status.CANCELLED, Status.REFUNDED} == TERMINAL


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("placed", "refund"),
        ("fulfilling", "cancel"),
        ("cancelled", "pay"),
        ("refunded", "refund"),
        ("nope", "pay"),
        ("paid", "explode"),
    ],
)
def test_anything_else_is_illegal(status: str, action: str) -> None:
    with pytest.raises(IllegalTransition) as err:
        next_status(status, action)
    assert err.value.status == 409


@given(st.lists(st.sampled_from(list(Action)), max_size=30))
def test_any_action_sequence_stays_in_the_table(actions: list[Action]) -> None:
    status = Status.PLACED
    reachable = {Status.PLACED, *TRANSITIONS.values()}
    for action in actions:
        try:
            after = next_status(status, action)
        except IllegalTransition:
            assert (status, action) not in TRANSITIONS
            continue
        assert status not in TERMINAL  # terminal states never move
        assert after == TRANSITIONS[(status, action)] and after in reachable
        status = after


@pytest.mark.parametrize(
    "token",
    ["4242424242424242", "4242 4242 4242 4242", "4000-0000-0000-0002", "123456789012", "1234567890123456789"],
)
def test_card_numbers_are_rejected(token: str) -> None:
    with pytest.raises(CardNumberRejected) as err:
        check_payment_token(token)
    assert token not in str(err.value)


@pytest.mark.parametrize("token", ["pm_123", "visa", "12345678901", "12345678901234567890"])
def test_non_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidPaymentToken):
        check_payment_token(token)


def test_tokens_pass() -> None:
    check_payment_token("tok_visa")
    check_payment_token("tok_4242424242424242")
