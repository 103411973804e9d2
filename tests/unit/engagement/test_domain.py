"""The engagement rules without a database: the case and message state machines (Hypothesis over
random action sequences), who a message goes to, and which consent covers marketing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.customers.domain import CONSENT_CHANNELS
from omnicommerce.engagement.domain import (
    CASE_TRANSITIONS,
    CONSENT_CHANNEL,
    CaseAction,
    CaseStatus,
    IllegalCaseTransition,
    IllegalMessageTransition,
    MessageChannel,
    MessageOutcome,
    MessageStatus,
    Purpose,
    RecipientUnreachable,
    accepts_notes,
    needs_consent,
    next_case_status,
    next_message_status,
    recipient_address,
)

# --- cases ----------------------------------------------------------------------------------------

LEGAL = {
    ("open", "wait"): "pending",
    ("pending", "resume"): "open",
    ("open", "resolve"): "resolved",
    ("pending", "resolve"): "resolved",
    ("resolved", "close"): "closed",
    ("resolved", "reopen"): "open",
}


@pytest.mark.parametrize("status", list(CaseStatus))
@pytest.mark.parametrize("action", list(CaseAction))
def test_every_pair_is_legal_exactly_when_the_lifecycle_says_so(
    status: CaseStatus, action: CaseAction
) -> None:
    expected = LEGAL.get((status.value, action.value))
    if expected is None:
        with pytest.raises(IllegalCaseTransition) as err:
            next_case_status(status, action)
        assert err.value.status == 409
        assert err.value.extensions == {"status_now": status.value, "action": action.value}
    else:
        assert next_case_status(status, action) == expected


def test_unknown_states_and_actions_are_illegal_not_crashes() -> None:
    with pytest.raises(IllegalCaseTransition):
        next_case_status("archived", "close")
    with pytest.raises(IllegalCaseTransition):
        next_case_status("open", "escalate")


@given(st.lists(st.sampled_from(list(CaseAction)), max_size=40))
def test_random_action_sequences_follow_the_lifecycle(actions: list[CaseAction]) -> None:
    """Whatever is tried, in any order: a case is only ever in a known state, closed is final,
    a case is closed only after being resolved, and every reopen follows a resolution."""
    status = CaseStatus.OPEN
    resolutions = reopens = 0
    history = [status]
    for action in actions:
        try:
            after = next_case_status(status, action)
        except IllegalCaseTransition:
            assert (status, action) not in CASE_TRANSITIONS
            continue
        assert status != CaseStatus.CLOSED, "nothing leaves closed"
        if after == CaseStatus.CLOSED:
            assert status == CaseStatus.RESOLVED
        if after == CaseStatus.RESOLVED:
            resolutions += 1
        if action == CaseAction.REOPEN:
            reopens += 1
            assert status == CaseStatus.RESOLVED
        status = after
        history.append(status)
    assert reopens <= resolutions
    assert all(s in set(CaseStatus) for s in history)
    assert history.count(CaseStatus.CLOSED) <= 1
    assert accepts_notes(status) == (status != CaseStatus.CLOSED)


# --- messages -------------------------------------------------------------------------------------


def test_outbound_message_lifecycle() -> None:
    assert next_message_status("queued", "sent") == MessageStatus.SENT
    assert next_message_status("queued", "failed") == MessageStatus.FAILED
    assert next_message_status("sent", "delivered") == MessageStatus.DELIVERED
    assert next_message_status("sent", "failed") == MessageStatus.FAILED  # a bounce


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("queued", "delivered"),  # delivered before the provider took it
        ("delivered", "failed"),
        ("delivered", "delivered"),
        ("failed", "delivered"),
        ("received", "delivered"),  # inbound messages have no delivery
        ("received", "sent"),
        ("sent", "sent"),
    ],
)
def test_illegal_message_transitions_are_409(status: str, outcome: str) -> None:
    with pytest.raises(IllegalMessageTransition) as err:
        next_message_status(status, outcome)
    assert err.value.status == 409


@given(st.lists(st.sampled_from(list(MessageOutcome)), max_size=20))
def test_a_settled_message_never_moves_again(outcomes: list[MessageOutcome]) -> None:
    status = MessageStatus.QUEUED
    for outcome in outcomes:
        try:
            after = next_message_status(status, outcome)
        except IllegalMessageTransition:
            continue
        assert status not in (MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.RECEIVED)
        status = after
    assert status != MessageStatus.RECEIVED


# --- addresses and consent ---------------------------------------------------------------------


def test_the_recipient_is_the_profile_contact_for_the_channel() -> None:
    contacts = {"customer_id": "cus_1", "email": "ada@example.com", "phone": "+14155550123", "given": None}
    assert recipient_address(MessageChannel.EMAIL, **contacts) == "ada@example.com"
    assert recipient_address(MessageChannel.SMS, **contacts) == "+14155550123"
    assert recipient_address(MessageChannel.WHATSAPP, **contacts) == "+14155550123"
    assert recipient_address(MessageChannel.PUSH, **contacts) == "cus_1"
    assert recipient_address(MessageChannel.IN_APP, **contacts) == "cus_1"
    assert (
        recipient_address(MessageChannel.EMAIL, **{**contacts, "given": "b@example.com"}) == "b@example.com"
    )


@pytest.mark.parametrize("channel", [MessageChannel.EMAIL, MessageChannel.SMS, MessageChannel.WHATSAPP])
def test_no_contact_for_the_channel_is_unreachable(channel: MessageChannel) -> None:
    with pytest.raises(RecipientUnreachable) as err:
        recipient_address(channel, customer_id="cus_1", email=None, phone=None, given=None)
    assert err.value.status == 422


def test_only_marketing_needs_consent_and_each_channel_maps_to_a_consent_channel() -> None:
    assert needs_consent(Purpose.MARKETING) and not needs_consent(Purpose.TRANSACTIONAL)
    assert set(CONSENT_CHANNEL) == set(MessageChannel)
    assert CONSENT_CHANNEL[MessageChannel.EMAIL] == "email"
    assert CONSENT_CHANNEL[MessageChannel.SMS] == "sms"
    assert CONSENT_CHANNEL[MessageChannel.PUSH] == "push"
    # An SMS opt-in is not a WhatsApp opt-in: only a decision on "any" covers WhatsApp.
    assert CONSENT_CHANNEL[MessageChannel.WHATSAPP] not in CONSENT_CHANNELS
