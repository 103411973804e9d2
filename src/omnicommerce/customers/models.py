"""customers tables: profiles, refresh tokens, one-time sign-in codes."""

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

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
    Index("ix_customers_last_name", "last_name"),
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
