"""Engagement tables: the message log, service cases and their notes. ``customer_id``,
``order_id`` and ``location_id`` are plain ids: no foreign keys into other contexts."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from omnicommerce.platform.db import UTCDateTime, metadata

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("customer_id", String(40), nullable=False),
    Column("channel", String(20), nullable=False),  # email | sms | push | in_app | whatsapp
    Column("direction", String(10), nullable=False),  # outbound | inbound
    Column("purpose", String(20), nullable=True),  # transactional | marketing; null for inbound
    # Personal data (erased on request): the recipient or sender, the subject and the body.
    Column("address", String(320), nullable=True),
    Column("subject", String(200), nullable=True),
    Column("body", Text, nullable=False),
    Column("status", String(20), nullable=False),  # queued | sent | delivered | failed | received
    Column("provider", String(40), nullable=True),
    Column("provider_message_id", String(200), nullable=True),
    Column("error", String(300), nullable=True),
    Column("origin_channel", String(40), nullable=True),  # sales channel of the credential
    Column("location_id", String(40), nullable=True),
    Column("sent_by", String(40), nullable=False),  # key, staff user or customer id
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # A provider's retried webhook or receipt names the same message: stored once.
    UniqueConstraint("channel", "provider_message_id"),
)
Index("ix_messages_customer", messages.c.customer_id, messages.c.id)

cases = Table(
    "cases",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("customer_id", String(40), nullable=False),
    Column("channel", String(40), nullable=False),  # the sales channel it was opened on
    Column("location_id", String(40), nullable=True),
    Column("order_id", String(40), nullable=True),
    Column("subject", String(200), nullable=False),  # personal data: "[erased]" on request
    Column("priority", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("opened_by", String(40), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
)
Index("ix_cases_customer", cases.c.customer_id, cases.c.id)
Index("ix_cases_status", cases.c.status, cases.c.id)

case_notes = Table(
    "case_notes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False),  # same context
    Column("author", String(40), nullable=False),
    Column("author_kind", String(10), nullable=False),
    Column("body", Text, nullable=False),  # personal data: "[erased]" on request
    Column("internal", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("ix_case_notes_case", case_notes.c.case_id, case_notes.c.id)
