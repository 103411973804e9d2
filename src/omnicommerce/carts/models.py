"""carts tables. References into other contexts (customer, location, sku) are plain strings.

A cart's lines live on its row as JSON (each with the name and categories captured from the
catalog), so a cart is read with one statement and changed with one compare-and-set UPDATE.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

carts = Table(
    "carts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("customer_id", String(40), nullable=True),
    Column("email", String(320), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("location_id", String(40), nullable=True),
    Column("fulfillment", Text, nullable=True),  # JSON
    # fulfillment's "type" (ship | pickup) as a column, so an UPDATE can tell whether holds stay put
    Column("fulfillment_type", String(10), nullable=True),
    Column("lines", Text, nullable=False, default="[]"),  # JSON list of {sku, quantity, name, category_ids}
    Column("coupon_codes", Text, nullable=False, default="[]"),  # JSON list
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),  # when the cart's stock holds lapse
)

# One active cart per customer across channels, enforced by the database against racing sign-ins.
_ACTIVE = carts.c.status.in_(["open", "checking_out", "voiding"])
Index(
    "uq_carts_active_customer",
    carts.c.customer_id,
    unique=True,
    sqlite_where=_ACTIVE & carts.c.customer_id.is_not(None),
    postgresql_where=_ACTIVE & carts.c.customer_id.is_not(None),
)
Index("ix_carts_channel_id", carts.c.channel, carts.c.id)
# Carts part-way through checkout, for the job that recovers checkouts cut off mid-way.
_IN_CHECKOUT = carts.c.status.in_(["checking_out", "voiding"])
Index("ix_carts_in_checkout", carts.c.updated_at, sqlite_where=_IN_CHECKOUT, postgresql_where=_IN_CHECKOUT)
Index("ix_carts_location_id", carts.c.location_id)

cart_handoffs = Table(
    "cart_handoffs",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("cart_id", String(40), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("claimed_by", String(40), nullable=True),
)
