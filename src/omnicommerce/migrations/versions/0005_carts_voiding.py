"""carts: a failed checkout's payment is voided while the cart is 'voiding', still its
customer's one active cart; carts part-way through checkout indexed for the recovery job

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-30 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = ("carts",)
depends_on = None


def _active_customer_index(statuses: str) -> None:
    where = sa.text(f"status IN ({statuses}) AND customer_id IS NOT NULL")
    op.drop_index("uq_carts_active_customer", table_name="carts")
    op.create_index(
        "uq_carts_active_customer",
        "carts",
        ["customer_id"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


def upgrade() -> None:
    _active_customer_index("'open', 'checking_out', 'voiding'")
    in_checkout = sa.text("status IN ('checking_out', 'voiding')")
    op.create_index(
        "ix_carts_in_checkout",
        "carts",
        ["updated_at"],
        sqlite_where=in_checkout,
        postgresql_where=in_checkout,
    )


def downgrade() -> None:
    op.drop_index("ix_carts_in_checkout", table_name="carts")
    _active_customer_index("'open', 'checking_out'")
