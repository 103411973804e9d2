"""Request and response shapes of the engagement API (messages and service cases)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from omnicommerce.engagement.domain import (
    MAX_BODY,
    MAX_NOTE,
    MAX_SUBJECT,
    CaseStatus,
    Direction,
    MessageChannel,
    MessageOutcome,
    MessageStatus,
    Priority,
    Purpose,
)

# Printable text: control characters (NUL among them) would be a database error on PostgreSQL.
_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BODY, pattern=_NO_CONTROL)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBJECT, pattern=_NO_CONTROL)]
Address = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320, pattern=_NO_CONTROL)
]
Ref = Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
Id = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- messages -----------------------------------------------------------------------------------------


class MessageCreate(_In):
    """An outbound message. Marketing needs the customer's consent for the channel."""

    channel: MessageChannel
    purpose: Purpose
    subject: Subject | None = Field(default=None, description="Email subject or push title")
    body: Text
    address: Address | None = Field(
        default=None,
        description="Override the recipient: by default the profile's email (email) or phone "
        "(sms, whatsapp); push and in-app go to the customer id at the provider",
    )


class InboundMessageCreate(_In):
    """A message the customer sent us, as a provider's webhook reports it."""

    channel: MessageChannel
    body: Text
    subject: Subject | None = None
    address: Address | None = Field(
        default=None, description="The sender's address, as the provider gives it"
    )
    provider_message_id: Ref | None = Field(
        default=None, description="The provider's id: a retried webhook with the same id is stored once"
    )
    received_at: datetime | None = Field(default=None, description="Default: now; never later than now")


class MessageReceipt(_In):
    """A provider's delivery report for an outbound message."""

    outcome: MessageOutcome = Field(description="delivered | failed (a bounce)")
    error: Annotated[str, StringConstraints(max_length=300, pattern=_NO_CONTROL)] | None = None


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["msg_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
    customer_id: str
    channel: MessageChannel
    direction: Direction
    purpose: Purpose | None = Field(description="null for inbound messages")
    address: str | None = Field(description="Recipient (outbound) or sender (inbound); null once erased")
    subject: str | None
    body: str
    status: MessageStatus
    provider: str | None
    provider_message_id: str | None
    error: str | None
    origin_channel: str | None = Field(description="The sales channel of the credential that sent it")
    location_id: str | None
    sent_by: str
    created_at: datetime
    updated_at: datetime


# --- cases ------------------------------------------------------------------------------------------


class CaseCreate(_In):
    customer_id: Id | None = Field(
        default=None, description="Required for keys and staff; a customer opens its own"
    )
    channel: Id | None = Field(
        default=None,
        description="Sales channel (call_center, web, app, pos …); required unless the credential is "
        "bound to one",
    )
    subject: Subject
    order_id: Id | None = None
    priority: Priority = Priority.NORMAL
    note: Text | None = Field(default=None, description="A first note: what the customer said")


class NoteCreate(_In):
    body: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NOTE, pattern=_NO_CONTROL)]
    internal: bool = Field(default=False, description="Hidden from the customer")


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    case_id: str
    author: str
    author_kind: str
    body: str
    internal: bool
    created_at: datetime


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["cas_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
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


class CaseDetail(CaseOut):
    notes: list[NoteOut] = Field(description="Oldest first; a customer sees no internal notes")
