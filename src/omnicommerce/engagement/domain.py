"""Engagement: messages to and from a customer, and service cases.

Pure Python: values, the two state machines as tables, the consent rule for a message, and the
errors. No SQLAlchemy, FastAPI or I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound

MAX_SUBJECT = 200
MAX_BODY = 10_000
MAX_NOTE = 5_000


# --- messages -------------------------------------------------------------------------------------


class MessageChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    IN_APP = "in_app"
    WHATSAPP = "whatsapp"


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Purpose(StrEnum):
    TRANSACTIONAL = "transactional"  # about something the customer did: receipts, pickups, resets
    MARKETING = "marketing"  # needs the customer's opt-in for that channel


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    RECEIVED = "received"  # inbound messages: the only state they have


class MessageOutcome(StrEnum):
    """What the provider reported: on sending (``sent``/``failed``), later by receipt."""

    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


# The message state machine as a table: (state, outcome) → next state. Not listed = illegal.
MESSAGE_TRANSITIONS: Mapping[tuple[MessageStatus, MessageOutcome], MessageStatus] = {
    (MessageStatus.QUEUED, MessageOutcome.SENT): MessageStatus.SENT,
    (MessageStatus.QUEUED, MessageOutcome.FAILED): MessageStatus.FAILED,
    (MessageStatus.SENT, MessageOutcome.DELIVERED): MessageStatus.DELIVERED,
    # A bounce after the provider accepted the message.
    (MessageStatus.SENT, MessageOutcome.FAILED): MessageStatus.FAILED,
}


def next_message_status(current: MessageStatus | str, outcome: MessageOutcome | str) -> MessageStatus:
    try:
        return MESSAGE_TRANSITIONS[(MessageStatus(current), MessageOutcome(outcome))]
    except (KeyError, ValueError):
        raise IllegalMessageTransition(
            f"a message that is {current} cannot become {outcome}",
            status_now=str(current),
            outcome=str(outcome),
        ) from None


# Which consent decision (channel of the customers context's consent) covers marketing on a
# message channel. WhatsApp has no consent channel of its own: only a decision on ``any`` covers
# it (the stricter reading: an SMS opt-in is not a WhatsApp opt-in).
CONSENT_CHANNEL: Mapping[MessageChannel, str] = {
    MessageChannel.EMAIL: "email",
    MessageChannel.SMS: "sms",
    MessageChannel.PUSH: "push",
    MessageChannel.IN_APP: "app",
    MessageChannel.WHATSAPP: "whatsapp",
}
MARKETING_PURPOSE = "marketing"  # the consent purpose (customers.domain.CONSENT_PURPOSES)

# Channels addressed by a contact on the profile; the others by the customer id at the provider
# (push and in-app providers target "the devices / inbox of external user X").
CONTACT_OF: Mapping[MessageChannel, str] = {
    MessageChannel.EMAIL: "email",
    MessageChannel.SMS: "phone",
    MessageChannel.WHATSAPP: "phone",
}


def needs_consent(purpose: Purpose) -> bool:
    return purpose == Purpose.MARKETING


def recipient_address(
    channel: MessageChannel, *, customer_id: str, email: str | None, phone: str | None, given: str | None
) -> str:
    """Where an outbound message goes: the address given, else the profile's contact for the
    channel; push and in-app go to the customer id. Raises :class:`RecipientUnreachable`."""
    if given:
        return given
    contact = CONTACT_OF.get(channel)
    if contact is None:
        return customer_id
    address = email if contact == "email" else phone
    if not address:
        raise RecipientUnreachable(
            f"the customer has no {contact} to send a {channel} message to; give 'address'",
            channel=str(channel),
        )
    return address


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    customer_id: str
    channel: MessageChannel
    direction: Direction
    purpose: Purpose | None  # inbound messages have none
    address: str | None  # recipient (outbound) or sender (inbound); null once erased
    subject: str | None
    body: str
    status: MessageStatus
    provider: str | None
    provider_message_id: str | None
    error: str | None
    origin_channel: str | None  # the sales channel of the credential that sent or logged it
    location_id: str | None
    sent_by: str
    version: int
    created_at: datetime
    updated_at: datetime


# --- service cases ----------------------------------------------------------------------------------


class CaseStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"  # waiting for the customer
    RESOLVED = "resolved"
    CLOSED = "closed"


class CaseAction(StrEnum):
    WAIT = "wait"  # open → pending: the agent waits for the customer
    RESUME = "resume"  # pending → open: the customer answered
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


# The case state machine as a table: (state, action) → next state. Not listed = illegal (409).
CASE_TRANSITIONS: Mapping[tuple[CaseStatus, CaseAction], CaseStatus] = {
    (CaseStatus.OPEN, CaseAction.WAIT): CaseStatus.PENDING,
    (CaseStatus.PENDING, CaseAction.RESUME): CaseStatus.OPEN,
    (CaseStatus.OPEN, CaseAction.RESOLVE): CaseStatus.RESOLVED,
    (CaseStatus.PENDING, CaseAction.RESOLVE): CaseStatus.RESOLVED,
    (CaseStatus.RESOLVED, CaseAction.CLOSE): CaseStatus.CLOSED,
    (CaseStatus.RESOLVED, CaseAction.REOPEN): CaseStatus.OPEN,
}


def next_case_status(current: CaseStatus | str, action: CaseAction | str) -> CaseStatus:
    try:
        return CASE_TRANSITIONS[(CaseStatus(current), CaseAction(action))]
    except (KeyError, ValueError):
        raise IllegalCaseTransition(
            f"cannot {action} a case that is {current}", status_now=str(current), action=str(action)
        ) from None


def accepts_notes(status: CaseStatus) -> bool:
    """A closed case is history: reopen is only possible from resolved, so notes stop at closed."""
    return status != CaseStatus.CLOSED


@dataclass(frozen=True, slots=True)
class CaseNote:
    id: str
    case_id: str
    author: str
    author_kind: str  # api_key | staff | customer
    body: str
    internal: bool  # hidden from the customer
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    customer_id: str
    channel: str
    location_id: str | None
    order_id: str | None
    subject: str
    priority: Priority
    status: CaseStatus
    opened_by: str
    version: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    notes: tuple[CaseNote, ...] = ()


# --- errors -----------------------------------------------------------------------------------------


class MessageNotFound(NotFound):
    code = "message-not-found"
    title = "Message not found"


class CaseNotFound(NotFound):
    code = "case-not-found"
    title = "Case not found"


class ConsentMissing(Conflict):
    """Marketing without the customer's opt-in for that channel."""

    code = "consent-missing"
    title = "The customer has not consented to marketing on this channel"


class RecipientSuppressed(Conflict):
    """The address belonged to a person whose data was erased on request."""

    code = "recipient-suppressed"
    title = "Recipient erased on request"


class RecipientUnreachable(InvalidInput):
    code = "recipient-unreachable"
    title = "No address to send this message to"


class IllegalMessageTransition(Conflict):
    code = "illegal-message-transition"
    title = "Not allowed in the message's current status"


class IllegalCaseTransition(Conflict):
    code = "illegal-case-transition"
    title = "Not allowed in the case's current status"


class CaseClosed(Conflict):
    code = "case-closed"
    title = "The case is closed"


class MessageChanged(Conflict):
    """Another request moved the message meanwhile, again and again: send the report again."""

    code = "message-changed"
    title = "The message changed meanwhile"


class CaseChanged(Conflict):
    """Another request moved the case meanwhile, again and again: send the action again."""

    code = "case-changed"
    title = "The case changed meanwhile"
