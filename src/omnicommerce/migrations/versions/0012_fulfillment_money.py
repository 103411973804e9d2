"""fulfillment money: unfilled units cancelled and refunded, the price side of exchanges

Revision ID: 0012
Revises: 0001
Create Date: 2026-11-30 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0012"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "unfilled_cancellations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("decision_id", sa.String(length=40), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("refund_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("refund_reference", sa.String(length=80), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unfilled_cancellations")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_unfilled_cancellations_decision_id")),
    )
    op.create_index(
        "ix_unfilled_cancellations_order_id", "unfilled_cancellations", ["order_id"], unique=False
    )
    op.create_index("ix_unfilled_cancellations_status", "unfilled_cancellations", ["status"], unique=False)
    op.create_table(
        "exchanges",
        sa.Column("return_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("replacement", sa.Text(), nullable=False),
        sa.Column("returned_value", sa.BigInteger(), nullable=False),
        sa.Column("replacement_value", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("charge_reference", sa.String(length=80), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("return_id", name=op.f("pk_exchanges")),
    )
    op.create_index("ix_exchanges_order_id", "exchanges", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_exchanges_order_id", table_name="exchanges")
    op.drop_table("exchanges")
    op.drop_index("ix_unfilled_cancellations_status", table_name="unfilled_cancellations")
    op.drop_index("ix_unfilled_cancellations_order_id", table_name="unfilled_cancellations")
    op.drop_table("unfilled_cancellations")
