"""outbox: where each event sits in the JetStream stream, and which copies an erasure must replace

Revision ID: 0014
Revises: 0001
Create Date: 2026-11-30 11:20:00

``stream_seq`` is the stream sequence the relay's PubAck returned (null for events delivered in
process, and for events published before this revision: those copies cannot be found again).
``stream_redaction_due`` is set by a privacy erasure on every outbox row it redacted; the NATS
relay then replaces the stream copy with the redacted document and clears it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("stream_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("stream_redaction_due", UTC(timezone=True), nullable=True))
    op.create_index(op.f("ix_outbox_stream_redaction_due"), "outbox", ["stream_redaction_due"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_stream_redaction_due"), table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("stream_redaction_due")
        batch.drop_column("stream_seq")
