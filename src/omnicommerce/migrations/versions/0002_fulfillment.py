"""fulfillment: fulfillment orders, routing rules per channel, routing decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0002"
down_revision = "0001"
branch_labels = ("fulfillment",)
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "fulfillment_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("order_number", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("delayed", sa.Boolean(), nullable=False),
        sa.Column("tracking_number", sa.String(length=80), nullable=True),
        sa.Column("carrier", sa.String(length=40), nullable=True),
        sa.Column("pickup_code", sa.String(length=16), nullable=True),
        sa.Column("pickup_expires_at", UTC(timezone=True), nullable=True),
        sa.Column("arrived_at", UTC(timezone=True), nullable=True),
        sa.Column("arrival_bay", sa.String(length=40), nullable=True),
        sa.Column("arrival_car", sa.String(length=120), nullable=True),
        sa.Column("handed_over_at", UTC(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("rerouted_from", sa.String(length=40), nullable=True),
        sa.Column("refund_due", sa.Boolean(), nullable=False),
        sa.Column("delivery_from", UTC(timezone=True), nullable=True),
        sa.Column("delivery_until", UTC(timezone=True), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment_orders")),
    )
    op.create_index("ix_fulfillment_orders_order_id", "fulfillment_orders", ["order_id"], unique=False)
    op.create_index(
        "ix_fulfillment_orders_location_status", "fulfillment_orders", ["location_id", "status"], unique=False
    )
    op.create_index(
        "ix_fulfillment_orders_status_expires",
        "fulfillment_orders",
        ["status", "pickup_expires_at"],
        unique=False,
    )
    op.create_index(
        "ix_fulfillment_orders_location_created",
        "fulfillment_orders",
        ["location_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "routing_rules",
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_routing_rules")),
    )
    op.create_table(
        "delivery_slots",
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("slot_start", sa.String(length=5), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.CheckConstraint("booked >= 0", name=op.f("ck_delivery_slots_booked_not_negative")),
        sa.PrimaryKeyConstraint("location_id", "day", "slot_start", name=op.f("pk_delivery_slots")),
    )
    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
    )
    op.create_index("ix_routing_decisions_order_id", "routing_decisions", ["order_id", "id"], unique=False)
    op.create_table(
        "returns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("refund_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("refund_reference", sa.String(length=80), nullable=True),
        sa.Column("replacement_fulfillment_order_id", sa.String(length=40), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
    )
    op.create_index("ix_returns_order_id", "returns", ["order_id"], unique=False)
    op.create_index("ix_returns_status", "returns", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_returns_status", table_name="returns")
    op.drop_index("ix_returns_order_id", table_name="returns")
    op.drop_table("returns")
    op.drop_index("ix_routing_decisions_order_id", table_name="routing_decisions")
    op.drop_table("routing_decisions")
    op.drop_table("routing_rules")
    op.drop_table("delivery_slots")
    op.drop_index("ix_fulfillment_orders_location_created", table_name="fulfillment_orders")
    op.drop_index("ix_fulfillment_orders_status_expires", table_name="fulfillment_orders")
    op.drop_index("ix_fulfillment_orders_location_status", table_name="fulfillment_orders")
    op.drop_index("ix_fulfillment_orders_order_id", table_name="fulfillment_orders")
    op.drop_table("fulfillment_orders")
