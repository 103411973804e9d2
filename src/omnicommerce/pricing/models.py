"""Pricing tables: the price book per currency, channel overrides, promotions, coupons.

Promotion scopes (channels, skus, category ids) are padded space-separated text, read whole
with the promotion: a quote loads every running promotion in one statement.
"""

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

prices = Table(
    "pricing_prices",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("amount", BigInteger, nullable=False),  # minor units
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)

price_overrides = Table(
    "pricing_price_overrides",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("channel", String(40), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)

promotions = Table(
    "pricing_promotions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("basis_points", Integer, nullable=False, default=0),
    Column("amount_off", BigInteger, nullable=False, default=0),
    Column("currency", String(3), nullable=True),
    Column("buy_quantity", Integer, nullable=False, default=0),
    Column("get_quantity", Integer, nullable=False, default=0),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=True),
    Column("channels", Text, nullable=False, default=""),
    Column("skus", Text, nullable=False, default=""),
    Column("category_ids", Text, nullable=False, default=""),
    Column("requires_coupon", Boolean, nullable=False, default=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_pricing_promotions_active_starts_at", "active", "starts_at"),
)

coupons = Table(
    "pricing_coupons",
    metadata,
    Column("code", String(40), primary_key=True),  # upper case
    Column("promotion_id", String(40), nullable=False),
    Column("max_uses", Integer, nullable=True),  # NULL = unlimited
    Column("uses", Integer, nullable=False, default=0),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="uses_within_max"),
)

coupon_redemptions = Table(
    "pricing_coupon_redemptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("redeemed_at", UTCDateTime(), nullable=False),
    Index("ix_pricing_coupon_redemptions_code", "code"),
)
