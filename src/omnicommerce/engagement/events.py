"""Events the engagement context publishes (``omni.engagement.<type>``).

They name facts and ids, never an address, subject, body or note: consumers that need the text
read it through the API (and an erasure then reaches one place only). ``channel`` is the message
channel (email, sms, …) on message events and the sales channel a case was opened on.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from omnicommerce.platform.events import Event


class _EngagementEvent(Event):
    context: ClassVar[str] = "engagement"


class _MessageEvent(_EngagementEvent):
    message_id: str
    customer_id: str
    channel: str
    direction: str
    purpose: str | None
    status: str
    origin_channel: str | None


class MessageSent(_MessageEvent):
    """The provider accepted an outbound message."""

    type: Literal["message.sent"] = "message.sent"
    version: Literal[1] = 1
    provider: str
    provider_message_id: str


class MessageDelivered(_MessageEvent):
    """The provider reported the message delivered to the customer."""

    type: Literal["message.delivered"] = "message.delivered"
    version: Literal[1] = 1
    provider_message_id: str | None


class MessageFailed(_MessageEvent):
    """The provider refused the message, or reported a bounce after accepting it."""

    type: Literal["message.failed"] = "message.failed"
    version: Literal[1] = 1
    provider: str | None


class MessageReceived(_MessageEvent):
    """The customer wrote to us (a reply, an inbound SMS or WhatsApp message)."""

    type: Literal["message.received"] = "message.received"
    version: Literal[1] = 1
    provider_message_id: str | None


class _CaseEvent(_EngagementEvent):
    # ``actor``: the key, staff user or customer that made the change.
    case_id: str
    customer_id: str
    channel: str
    location_id: str | None
    order_id: str | None
    priority: str
    status: str
    actor: str


class CaseOpened(_CaseEvent):
    """A service case was opened for a customer (by an agent, a store, or the customer)."""

    type: Literal["case.opened"] = "case.opened"
    version: Literal[1] = 1


class CaseNoteAdded(_CaseEvent):
    """A note was added to the case (its text is not in the event)."""

    type: Literal["case.note_added"] = "case.note_added"
    version: Literal[1] = 1
    note_id: str
    internal: bool


class CasePending(_CaseEvent):
    """The case waits for the customer."""

    type: Literal["case.pending"] = "case.pending"
    version: Literal[1] = 1


class CaseResumed(_CaseEvent):
    """A case that waited for the customer is open again."""

    type: Literal["case.resumed"] = "case.resumed"
    version: Literal[1] = 1


class CaseResolved(_CaseEvent):
    """The agent resolved the case; it can still be reopened until it is closed."""

    type: Literal["case.resolved"] = "case.resolved"
    version: Literal[1] = 1


class CaseClosed(_CaseEvent):
    """A resolved case is closed for good (a new problem is a new case)."""

    type: Literal["case.closed"] = "case.closed"
    version: Literal[1] = 1


class CaseReopened(_CaseEvent):
    """A resolved case is open again."""

    type: Literal["case.reopened"] = "case.reopened"
    version: Literal[1] = 1
