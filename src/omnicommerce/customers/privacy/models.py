"""Privacy tables: the journal of requests (no personal data in it) and the suppression list
(keyed hashes of erased identifiers, never the values)."""

from sqlalchemy import Column, Index, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

privacy_requests = Table(
    "privacy_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(20), nullable=False),  # export | erasure
    Column("customer_id", String(40), nullable=False),  # the profile: an id, not personal data
    Column("requested_by", String(40), nullable=False),  # the API key (or staff) acting
    Column("reason", String(200), nullable=True),  # e.g. a ticket number; never free-form PII
    # JSON: {context: rows changed or exported}, the accounts covered and identifier types
    # suppressed — what was done, without the data itself.
    Column("summary", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_privacy_requests_customer_id", "customer_id"),
)

privacy_suppressions = Table(
    "privacy_suppressions",
    metadata,
    Column("identifier_hash", String(64), primary_key=True),  # HMAC-SHA256("type:value")
    Column("identifier_type", String(30), nullable=False),
    Column("request_id", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
