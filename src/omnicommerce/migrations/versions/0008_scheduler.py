"""scheduler: one lease row per periodic job (which process runs it, when it is next due)

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-30 05:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0008"
down_revision = "0001"
branch_labels = ("scheduler",)
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "scheduler_jobs",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("next_run_at", UTC(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", UTC(timezone=True), nullable=True),
        sa.Column("last_started_at", UTC(timezone=True), nullable=True),
        sa.Column("last_finished_at", UTC(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_jobs")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_jobs")
