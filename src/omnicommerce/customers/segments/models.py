"""Segment tables: the segments (rules as JSON) and their current members (root profiles)."""

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

segments = Table(
    "segments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", String(500), nullable=False),
    Column("rules", Text, nullable=False),  # JSON, validated by domain.parse_rule
    # Has a within_days condition: the windowed job re-evaluates it as time passes.
    Column("windowed", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("evaluated_at", UTCDateTime(), nullable=False),  # last full evaluation
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", String(40), ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
    Column("customer_id", String(40), primary_key=True),  # a root profile (never a merged one)
    Column("added_at", UTCDateTime(), nullable=False),
    Index("ix_segment_members_customer_id", "customer_id"),  # a profile's segments
)
