"""orders tables, and the test payment gateway's own table. Cross-context ids are plain strings."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from omnicommerce.platform.db import UTCDateTime, metadata

orders = Table(
    "orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("channel", String(40), nullable=False),
    Column("location_id", String(40), nullable=True),
    Column("customer_id", String(40), nullable=True),
    Column("email", String(320), nullable=True),
    Column("cart_id", String(40), nullable=True, unique=True),  # a cart checks out once
    Column("source", String(20), nullable=False),  # checkout | store_sale | import
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("discount_total", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("fulfillment", Text, nullable=True),  # JSON
    Column("payment_provider", String(40), nullable=True),
    Column("payment_method", String(20), nullable=False),
    Column("payment_reference", String(80), nullable=True),
    Column("payment_status", String(20), nullable=False),
    # JSON list of {seq, from_status, to_status, actor, at}: written with the row, appended to by
    # the same compare-and-set UPDATE that moves the status.
    Column("status_history", Text, nullable=False, default="[]"),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # What went back to the payment so far: the sum of the order's ``order_refunds`` rows, moved
    # only by the conditional UPDATE that records one (``repository.add_refunded``).
    Column("refunded_total", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("refunded_total >= 0 AND refunded_total <= total", name="refunds_within_total"),
)
Index("ix_orders_customer_id_id", orders.c.customer_id, orders.c.id)
Index("ix_orders_channel_id", orders.c.channel, orders.c.id)
Index("ix_orders_location_id_id", orders.c.location_id, orders.c.id)
Index("ix_orders_placed_at", orders.c.placed_at)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(40), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(300), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("adjustments", Text, nullable=False),  # JSON list
    PrimaryKeyConstraint("order_id", "line_no"),
)

# Every amount given back against an order — by the order's own refund or cancel, and by the
# fulfillment context's partial refunds (returns, exchange surplus, cancelled units) — one row per
# idempotency key. Append-only.
order_refunds = Table(
    "order_refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(20), nullable=False),  # refund | cancel | return | exchange | unfilled
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("actor", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)
Index("ix_order_refunds_order_id", order_refunds.c.order_id)

# The built-in "test" gateway keeps its state like a real one would: keyed by the caller's
# idempotency key, so a retry from any process replays instead of charging twice.
payment_test_charges = Table(
    "payment_test_charges",
    metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("reference", String(80), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),  # charge | refund
    Column("parent_reference", String(80), nullable=True),  # a refund's charge
    Column("status", String(20), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
