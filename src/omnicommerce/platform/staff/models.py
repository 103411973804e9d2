"""Staff tables: the accounts and their refresh tokens (platform metadata, like API keys)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),  # stored lower-cased
    Column("name", String(120), nullable=False),
    Column("role", String(30), nullable=False),
    Column("location_id", String(40), nullable=True),  # a store associate's store
    Column("channel_id", String(40), nullable=True),  # the channel their sales are rung up on
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("active", Boolean, nullable=False),
    # Bumped by every change to role, binding, password or status: tokens carry it, so a change
    # ends the sessions issued before it.
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("last_sign_in_at", UTCDateTime(), nullable=True),
)

staff_refresh_tokens = Table(
    "staff_refresh_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("family_id", String(40), nullable=False),  # every token rotated from one sign-in
    Column("staff_id", String(40), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("staff_version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("replaced_by", String(40), nullable=True),
    Index("ix_staff_refresh_tokens_family", "family_id"),
)
