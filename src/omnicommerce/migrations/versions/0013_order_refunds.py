"""orders: the refund ledger — every amount given back against an order, and its running total

Revision ID: 0013
Revises: 0001
Create Date: 2026-11-30 09:50:00

Existing data is carried over so that an upgraded database cannot pay twice either: returns
whose refund was owed or made (0002's ``returns``) and orders already refunded or cancelled are
written to the ledger, each order's entries limited to its total.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db
from omnicommerce.platform import clock
from omnicommerce.platform.ids import new_id

revision = "0013"
down_revision = "0001"
branch_labels = None
depends_on = "0002"  # the backfill reads fulfillment's returns

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("refunded_total", sa.BigInteger(), server_default="0", nullable=False))
        batch.create_check_constraint(
            op.f("ck_orders_refunds_within_total"), "refunded_total >= 0 AND refunded_total <= total"
        )
    ledger = op.create_table(
        "order_refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_order_refunds_amount_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_order_refunds_idempotency_key")),
    )
    op.create_index("ix_order_refunds_order_id", "order_refunds", ["order_id"], unique=False)
    _backfill(ledger)


def _backfill(ledger: sa.Table) -> None:
    """Returns refunded (or owed) first, then the rest of every refunded or cancelled order."""
    conn = op.get_bind()
    given: dict[str, list[tuple[str, str, int]]] = defaultdict(list)  # order → (key, reason, amount)
    for r in conn.execute(
        sa.text(
            "SELECT id, order_id, refund_amount FROM returns"
            " WHERE status IN ('refund_pending', 'refunded') AND refund_amount > 0 ORDER BY id"
        )
    ):
        given[r.order_id].append((f"return:{r.id}", "return", int(r.refund_amount)))
    terminal = {
        r.id: (r.status, int(r.total))
        for r in conn.execute(
            sa.text("SELECT id, status, total FROM orders WHERE status IN ('refunded', 'cancelled')")
        )
    }
    totals = dict(terminal)
    if given:
        for r in conn.execute(sa.text("SELECT id, status, total FROM orders")):
            totals.setdefault(r.id, (r.status, int(r.total)))
    for order_id, (status, total) in terminal.items():
        reason = "refund" if status == "refunded" else "cancel"
        given[order_id].append((f"balance:{order_id}", reason, total))
    now = clock.now()
    rows = []
    for order_id, entries in given.items():
        left = totals.get(order_id, ("", 0))[1]
        for key, reason, amount in entries:
            granted = max(0, min(amount, left))
            left -= granted
            rows.append(
                {
                    "id": new_id("orf"),
                    "order_id": order_id,
                    "amount": granted,
                    "reason": reason,
                    "idempotency_key": key,
                    "actor": "migration",
                    "created_at": now,
                }
            )
        conn.execute(
            sa.text("UPDATE orders SET refunded_total = :t WHERE id = :id"),
            {"t": totals.get(order_id, ("", 0))[1] - left, "id": order_id},
        )
    if rows:
        op.bulk_insert(ledger, rows)


def downgrade() -> None:
    op.drop_index("ix_order_refunds_order_id", table_name="order_refunds")
    op.drop_table("order_refunds")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_refunds_within_total"), type_="check")
        batch.drop_column("refunded_total")
