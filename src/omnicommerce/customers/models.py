"""customers tables: profiles, refresh tokens, one-time sign-in codes, and the customer data
platform: ingested events, the identity graph, the merge journal and the identity rules."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from omnicommerce.platform.db import UTCDateTime, metadata

customers = Table(
    "customers",
    metadata,
    Column("id", String(40), primary_key=True),
    # Unique but nullable: both databases allow many NULLs, so POS customers without email coexist.
    Column("email", String(254), nullable=True, unique=True),
    Column("phone", String(20), nullable=True, unique=True),
    Column("first_name", String(100), nullable=True),
    Column("last_name", String(100), nullable=True),
    Column("password_hash", Text, nullable=True),  # argon2; None for POS / call-center accounts
    Column("created_channel", String(40), nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    # Set when this profile was merged into another: the surviving root (kept flat, never a chain).
    Column("merged_into", String(40), nullable=True),
    Index("ix_customers_last_name", "last_name"),
    Index("ix_customers_merged_into", "merged_into"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("family_id", String(40), nullable=False, index=True),  # one sign-in and all its rotations
    Column(
        "customer_id", String(40), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of a 256-bit secret
    Column("channel", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("replaced_by", String(40), nullable=True),
)

otp_codes = Table(
    "otp_codes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "customer_id", String(40), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("code_hash", String(64), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("consumed_at", UTCDateTime(), nullable=True),
)


# --- customer data platform ----------------------------------------------------------------------

customer_identities = Table(
    "customer_identities",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(30), nullable=False),
    Column("value", String(254), nullable=False),  # normalised (email lower-case, phone E.164)
    Column("customer_id", String(40), nullable=False),  # the profile it belongs to now (a root)
    # The profile it was first linked to; unmerge sends it back to that side of the split.
    Column("origin_customer_id", String(40), nullable=False),
    Column("source", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # One owner per identifier: concurrent events race on this constraint, not on a read.
    UniqueConstraint("type", "value", name="uq_customer_identities_type_value"),
    Index("ix_customer_identities_customer_id", "customer_id"),
)

customer_events = Table(
    "customer_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("message_id", String(200), nullable=False, unique=True),  # dedupe key (Segment messageId)
    Column("type", String(20), nullable=False),  # track identify page screen alias group
    Column("name", String(200), nullable=True),  # track event name, page or screen name
    Column("customer_id", String(40), nullable=True),  # None until an identity links the visitor
    Column("origin_customer_id", String(40), nullable=True),  # see customer_identities
    Column("anonymous_id", String(200), nullable=True),
    Column("user_id", String(200), nullable=True),
    Column("channel", String(40), nullable=True),
    Column("source", String(80), nullable=False),  # the API key id, or an internal context name
    Column("timestamp", UTCDateTime(), nullable=False),  # when it happened (skew-corrected)
    Column("received_at", UTCDateTime(), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: properties, traits, context
    Index("ix_customer_events_customer_id_timestamp", "customer_id", "timestamp"),
    Index("ix_customer_events_anonymous_id", "anonymous_id"),
)

customer_merges = Table(
    "customer_merges",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("survivor_id", String(40), nullable=False, index=True),
    Column("merged_id", String(40), nullable=False, index=True),
    Column("source", String(80), nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: the identifiers and event that caused it
    Column("created_at", UTCDateTime(), nullable=False),
    Column("undone_at", UTCDateTime(), nullable=True),
    Column("undone_by", String(40), nullable=True),
)

identity_rules = Table(
    "identity_rules",
    metadata,
    Column("id", String(40), primary_key=True),  # "default": one rule set per installation
    Column("document", Text, nullable=False),  # JSON, validated by domain.IdentityRules
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(40), nullable=False),
)

customer_consents = Table(
    "customer_consents",
    metadata,
    Column("customer_id", String(40), primary_key=True),  # the account the decision was made by
    Column("purpose", String(30), primary_key=True),  # marketing, personalization, sale_of_data …
    Column("channel", String(20), primary_key=True),  # email, sms, push … or "any"
    Column("granted", Boolean, nullable=False),
    Column("source", String(80), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),  # when the person decided
)

# Computed traits, kept per account (the profile a row first belonged to) and updated with every
# ingested event; a merged profile reads the sum of its accounts, so an unmerge splits them too.
customer_traits = Table(
    "customer_traits",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("event_count", Integer, nullable=False),
)

customer_channels = Table(
    "customer_channels",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("channel", String(40), primary_key=True),
)

customer_order_stats = Table(
    "customer_order_stats",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("order_count", Integer, nullable=False),  # placed minus cancelled
    Column("lifetime_value", BigInteger, nullable=False),  # minor units: placed - cancelled - refunded
    Column("last_purchase_at", UTCDateTime(), nullable=True),
)

# What an account's orders say it prefers: ``kind`` "store" (key: location id, weight: orders
# placed there) or "category" (key: category id, weight: orders with an item in it).
customer_affinities = Table(
    "customer_affinities",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("weight", Integer, nullable=False),
)


# --- probabilistic matching, review queue, bulk onboarding ----------------------------------------

# What the matcher compares beyond email and phone, per account (the profile a record first
# created); filled from imports and identify traits, never overwritten by a later source.
customer_attributes = Table(
    "customer_attributes",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("given_name", String(100), nullable=True),
    Column("surname", String(100), nullable=True),
    Column("date_of_birth", String(10), nullable=True),  # ISO 8601 date as given (normalised later)
    Column("street_number", String(20), nullable=True),
    Column("address_1", String(200), nullable=True),
    Column("address_2", String(200), nullable=True),
    Column("suburb", String(100), nullable=True),
    Column("postcode", String(20), nullable=True),
    Column("state", String(50), nullable=True),
    Column("source", String(80), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Set once the profile was scored against the others (so the subscriber skips it).
    Column("matched_at", UTCDateTime(), nullable=True),
)

# Blocking keys (e.g. surname sound + postcode): candidates for a new record are read by key,
# never by scanning every profile.
customer_match_keys = Table(
    "customer_match_keys",
    metadata,
    Column("key", String(160), primary_key=True),
    Column("customer_id", String(40), primary_key=True),
    Index("ix_customer_match_keys_customer_id", "customer_id"),
)

identity_reviews = Table(
    "identity_reviews",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("left_id", String(40), nullable=False),  # the new record's account
    Column("right_id", String(40), nullable=False),  # the candidate's account
    # "<lower id>|<higher id>": one proposal per pair ever, so a rejected pair never comes back.
    Column("pair_key", String(81), nullable=False, unique=True),
    Column("probability", Float, nullable=False),
    Column("weight", Float, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: levels and bits per comparison (no values)
    Column("source", String(80), nullable=False),
    Column("origin", String(40), nullable=False),  # the import id, or "ingestion"
    Column("status", String(10), nullable=False),  # pending, accepted, rejected
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("decided_by", String(40), nullable=True),
    Column("merge_id", String(40), nullable=True),
    Index("ix_identity_reviews_status_id", "status", "id"),
)

customer_imports = Table(
    "customer_imports",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(10), nullable=False),  # queued, running, done, failed
    Column("source", String(80), nullable=False),
    Column("format", String(10), nullable=False),  # csv, jsonl
    Column("mapping", Text, nullable=False),  # JSON
    Column("data", Text, nullable=True),  # the file while queued; cleared once processed
    Column("rows", Integer, nullable=False),
    Column("report", Text, nullable=True),  # JSON
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
)

# Custom traits (identify traits and imported ``trait:`` columns), per account like the computed
# ones: the value as JSON and the time of the event that said it, so the latest event wins
# whatever order they arrive in, and an unmerge splits them back with their account.
customer_custom_traits = Table(
    "customer_custom_traits",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("observed_at", UTCDateTime(), nullable=False),  # the event's (skew-corrected) time
    Column("source", String(80), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
