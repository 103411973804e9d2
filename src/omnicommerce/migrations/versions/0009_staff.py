"""staff: console users with roles, and their refresh tokens

Revision ID: 0009
Revises: 0001
Create Date: 2026-11-30 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0009"
down_revision = "0001"
branch_labels = ("staff",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("location_id", sa.String(length=40), nullable=True),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", omnicommerce.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omnicommerce.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", omnicommerce.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_table(
        "staff_refresh_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("family_id", sa.String(length=40), nullable=False),
        sa.Column("staff_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_version", sa.Integer(), nullable=False),
        sa.Column("created_at", omnicommerce.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", omnicommerce.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", omnicommerce.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_refresh_tokens_token_hash")),
    )
    op.create_index("ix_staff_refresh_tokens_family", "staff_refresh_tokens", ["family_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_refresh_tokens_family", table_name="staff_refresh_tokens")
    op.drop_table("staff_refresh_tokens")
    op.drop_table("staff_users")
