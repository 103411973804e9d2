"""Inventory tables. References into other contexts (carts, orders, channels) are plain ids."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from omnicommerce.platform.db import UTCDateTime, metadata

locations = Table(
    "locations",
    metadata,
    Column("id", String(40), primary_key=True),  # caller-chosen slug: "dc-east", "store-007"
    Column("name", String(120), nullable=False),
    Column("kind", String(20), nullable=False),  # dc | store | dark_store
    Column("address_line", String(200), nullable=False, default=""),
    Column("city", String(120), nullable=False, default=""),
    Column("postal_code", String(20), nullable=False, default=""),
    Column("country", String(2), nullable=False, default=""),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("capabilities", Text, nullable=False, default=""),  # space separated
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

channel_stock_rules = Table(
    "channel_stock_rules",
    metadata,
    Column("channel_id", String(40), primary_key=True),
    Column("visible_locations", Text, nullable=False, default=""),  # space separated; empty = all
    Column("buffer", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("buffer >= 0", name="buffer_not_negative"),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("sku", String(64), nullable=False),
    Column("location_id", String(40), nullable=False),
    Column("on_hand", Integer, nullable=False, default=0),
    Column("reserved", Integer, nullable=False, default=0),
    Column("safety_stock", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("sku", "location_id"),
    # No CHECK on_hand >= reserved: a count may find fewer units than promised (a shortfall).
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner_id", String(64), nullable=False),  # a cart id
    Column("sku", String(64), nullable=False),
    Column("location_id", String(40), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("order_id", String(40), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_holds_owner_state", "owner_id", "state"),
    Index("ix_holds_row_state", "sku", "location_id", "state"),
    Index("ix_holds_state_expires", "state", "expires_at"),
    Index("ix_holds_order", "order_id"),
)

stock_ledger = Table(
    "stock_ledger",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("location_id", String(40), nullable=False),
    Column("delta_on_hand", Integer, nullable=False),
    Column("delta_reserved", Integer, nullable=False),
    Column("reason", String(20), nullable=False),
    Column("reference", String(64), nullable=True),  # hold / order / transfer id
    Column("note", String(200), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_stock_ledger_row", "sku", "location_id"),
)
