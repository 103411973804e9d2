"""Webhook tables. ``event_id`` refers to an outbox event; no foreign keys into other contexts."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", String(200), nullable=False, default=""),
    Column("event_types", Text, nullable=False),  # space separated; "*" = every event
    # Needed in clear to sign (HMAC); never returned by the API after creation.
    Column("secret", String(80), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("event_id", String(40), nullable=False),  # the webhook-id header: same on retry and replay
    Column("event_type", String(80), nullable=False),
    Column("payload", Text, nullable=False),  # the exact body sent
    Column("status", String(20), nullable=False),  # pending | succeeded | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=True),  # null once settled
    Column("last_attempt_at", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("replay_of", String(40), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)
