"""Fulfillment tables. Orders, locations and channels are referenced by plain id strings."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

fulfillment_orders = Table(
    "fulfillment_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("order_number", String(20), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("customer_id", String(40), nullable=True),  # for scoping customers to their own
    Column("location_id", String(40), nullable=False),
    Column("kind", String(20), nullable=False),  # ship | pickup
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("lines", Text, nullable=False),  # JSON [{sku, quantity, rejected}]
    Column("delayed", Boolean, nullable=False, default=False),
    Column("tracking_number", String(80), nullable=True),
    Column("carrier", String(40), nullable=True),
    Column("pickup_code", String(16), nullable=True),
    Column("pickup_expires_at", UTCDateTime(), nullable=True),
    Column("arrived_at", UTCDateTime(), nullable=True),
    Column("arrival_bay", String(40), nullable=True),
    Column("arrival_car", String(120), nullable=True),
    Column("handed_over_at", UTCDateTime(), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("rerouted_from", String(40), nullable=True),
    # A pickup cancelled by expiry owes the customer a refund until the order says refunded.
    Column("refund_due", Boolean, nullable=False, default=False),
    Column("delivery_from", UTCDateTime(), nullable=True),  # same-day: the booked slot
    Column("delivery_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("ix_fulfillment_orders_order_id", fulfillment_orders.c.order_id)
Index("ix_fulfillment_orders_location_status", fulfillment_orders.c.location_id, fulfillment_orders.c.status)
Index(
    "ix_fulfillment_orders_status_expires",
    fulfillment_orders.c.status,
    fulfillment_orders.c.pickup_expires_at,
)
Index(
    "ix_fulfillment_orders_location_created",
    fulfillment_orders.c.location_id,
    fulfillment_orders.c.created_at,
)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("channel", String(40), primary_key=True),
    Column("rules", Text, nullable=False),  # JSON: filters + objectives
    Column("version", Integer, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Same-day slots booked per store and day; a booking is one conditional UPDATE (booked < capacity).
delivery_slots = Table(
    "delivery_slots",
    metadata,
    Column("location_id", String(40), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD (UTC)
    Column("slot_start", String(5), primary_key=True),  # HH:MM (UTC)
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False),
    CheckConstraint("booked >= 0", name="booked_not_negative"),
)

# One row per routing of an order (the first one when it was paid, then one per re-routing):
# what was considered, what each candidate would cost, what was chosen and why.
routing_decisions = Table(
    "routing_decisions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("trigger", String(40), nullable=False),  # order.paid | rejection:<fo id>
    Column("decision", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("ix_routing_decisions_order_id", routing_decisions.c.order_id, routing_decisions.c.id)

# Returns anywhere: an online order's units received at any location (or by mail), refunded to
# the original payment, or exchanged for replacement units reserved first.
returns = Table(
    "returns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("location_id", String(40), nullable=False),  # where the units were received
    Column("method", String(20), nullable=False),  # in_store | mail
    Column("status", String(20), nullable=False),  # refund_pending | refunded | exchanged
    Column("lines", Text, nullable=False),  # JSON [{sku, quantity, condition}]
    Column("refund_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("refund_reference", String(80), nullable=True),
    Column("replacement_fulfillment_order_id", String(40), nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("ix_returns_order_id", returns.c.order_id)
Index("ix_returns_status", returns.c.status)

# Units no location can serve, cancelled on the order: their price goes back to the original
# payment. One row per routing that found nowhere for them (``decision_id`` unique), so a retried
# routing or a duplicate event cannot cancel — or refund — the same units twice.
unfilled_cancellations = Table(
    "unfilled_cancellations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("decision_id", String(40), nullable=False, unique=True),
    Column("lines", Text, nullable=False),  # JSON [{sku, quantity}]
    Column("refund_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),  # refund_pending | refunded
    Column("refund_reference", String(80), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("ix_unfilled_cancellations_order_id", unfilled_cancellations.c.order_id)
Index("ix_unfilled_cancellations_status", unfilled_cancellations.c.status)

# The price side of an exchange (one row per return that has a replacement): what the returned
# units were paid, what the replacement costs now (the pricing quote), and the charge of the
# difference when the replacement costs more.
exchanges = Table(
    "exchanges",
    metadata,
    Column("return_id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("replacement", Text, nullable=False),  # JSON [{sku, quantity}]
    Column("returned_value", BigInteger, nullable=False),
    Column("replacement_value", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("charge_reference", String(80), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("ix_exchanges_order_id", exchanges.c.order_id)
