"""privacy requests journal and suppression list

Revision ID: 0007
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0007"
down_revision = "0001"
branch_labels = ("privacy",)
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("requested_by", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_index("ix_privacy_requests_customer_id", "privacy_requests", ["customer_id"])
    op.create_table(
        "privacy_suppressions",
        sa.Column("identifier_hash", sa.String(length=64), nullable=False),
        sa.Column("identifier_type", sa.String(length=30), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identifier_hash", name=op.f("pk_privacy_suppressions")),
    )


def downgrade() -> None:
    op.drop_table("privacy_suppressions")
    op.drop_index("ix_privacy_requests_customer_id", table_name="privacy_requests")
    op.drop_table("privacy_requests")
