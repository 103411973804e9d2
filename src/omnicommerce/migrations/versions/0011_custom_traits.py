"""customers: custom traits per account (identify traits, imported trait columns)

Revision ID: 0011
Revises: 0001
Create Date: 2026-11-30 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "customer_custom_traits",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("observed_at", UTC(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "name", name=op.f("pk_customer_custom_traits")),
    )


def downgrade() -> None:
    op.drop_table("customer_custom_traits")
