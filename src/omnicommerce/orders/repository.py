"""The SQL that matters for orders: the one read choke point scoping orders to the caller,
multi-row inserts, and the compare-and-set on the order's version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, insert, select, true, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.orders.domain import Order, OrderLine, Payment
from omnicommerce.orders.models import order_lines, order_status_history, orders
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal


def visible_to(actor: Principal) -> ColumnElement[bool]:
    """THE scoping rule for orders: a customer its own, a store key its store's, a channel key its
    channel's, an unbound key (scopes checked by the route) all. Out of reach answers 404."""
    if actor.is_customer:
        return orders.c.customer_id == actor.customer_id
    if actor.location is not None:
        return orders.c.location_id == actor.location
    if actor.channel is not None:
        return orders.c.channel == actor.channel
    return true()


def get(conn: Connection, order_id: str, *, actor: Principal | None) -> Order | None:
    cond = orders.c.id == order_id
    if actor is not None:
        cond = and_(cond, visible_to(actor))
    found = _load(conn, select(orders).where(cond))
    return found[0] if found else None


def by_cart(conn: Connection, cart_id: str) -> Order | None:
    found = _load(conn, select(orders).where(orders.c.cart_id == cart_id))
    return found[0] if found else None


def search(
    conn: Connection,
    actor: Principal,
    *,
    channel: str | None,
    customer_id: str | None,
    status: str | None,
    since: datetime | None,
    before_id: str | None,
    limit: int,
) -> list[Order]:
    """Newest first; ``limit`` rows (callers ask for one more to know whether a page follows)."""
    conds: list[ColumnElement[bool]] = [visible_to(actor)]
    if channel is not None:
        conds.append(orders.c.channel == channel)
    if customer_id is not None:
        conds.append(orders.c.customer_id == customer_id)
    if status is not None:
        conds.append(orders.c.status == status)
    if since is not None:
        conds.append(orders.c.placed_at >= since)
    if before_id is not None:
        conds.append(orders.c.id < before_id)
    return _load(conn, select(orders).where(*conds).order_by(orders.c.id.desc()).limit(limit))


def _load(conn: Connection, stmt: Any) -> list[Order]:
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    lines: dict[str, list[OrderLine]] = {}
    for r in conn.execute(
        select(order_lines)
        .where(order_lines.c.order_id.in_([o.id for o in rows]))
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    ):
        lines.setdefault(r.order_id, []).append(
            OrderLine(
                sku=r.sku,
                name=r.name,
                quantity=r.quantity,
                unit_price=r.unit_price,
                subtotal=r.subtotal,
                discount=r.discount,
                total=r.total,
                adjustments=orjson.loads(r.adjustments),
            )
        )
    return [_order(r, lines.get(r.id, [])) for r in rows]


def _order(r: Row[Any], lines: list[OrderLine]) -> Order:
    return Order(
        id=r.id,
        number=r.number,
        channel=r.channel,
        location_id=r.location_id,
        customer_id=r.customer_id,
        email=r.email,
        cart_id=r.cart_id,
        status=r.status,
        version=r.version,
        currency=r.currency,
        subtotal=r.subtotal,
        discount_total=r.discount_total,
        total=r.total,
        fulfillment=orjson.loads(r.fulfillment) if r.fulfillment else None,
        payment=Payment(r.payment_provider, r.payment_method, r.payment_reference, r.payment_status),
        placed_at=r.placed_at,
        created_at=r.created_at,
        lines=lines,
    )


def order_row(o: Order, *, source: str) -> dict[str, Any]:
    return {
        "id": o.id,
        "number": o.number,
        "channel": o.channel,
        "location_id": o.location_id,
        "customer_id": o.customer_id,
        "email": o.email,
        "cart_id": o.cart_id,
        "source": source,
        "status": o.status,
        "version": o.version,
        "currency": o.currency,
        "subtotal": o.subtotal,
        "discount_total": o.discount_total,
        "total": o.total,
        "fulfillment": orjson.dumps(o.fulfillment).decode() if o.fulfillment is not None else None,
        "payment_provider": o.payment.provider,
        "payment_method": o.payment.method,
        "payment_reference": o.payment.reference,
        "payment_status": o.payment.status,
        "placed_at": o.placed_at,
        "created_at": o.created_at,
        "updated_at": o.created_at,
    }


def line_rows(o: Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": o.id,
            "line_no": i,
            "sku": ln.sku,
            "name": ln.name,
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "subtotal": ln.subtotal,
            "discount": ln.discount,
            "total": ln.total,
            "adjustments": orjson.dumps(ln.adjustments).decode(),
        }
        for i, ln in enumerate(o.lines, start=1)
    ]


def insert_orders(
    conn: Connection, batch: Sequence[Order], *, source: str, history: Sequence[dict[str, Any]]
) -> None:
    """Orders, their lines and their history: three multi-row INSERTs whatever the size."""
    conn.execute(insert(orders), [order_row(o, source=source) for o in batch])
    lines = [row for o in batch for row in line_rows(o)]
    if lines:
        conn.execute(insert(order_lines), lines)
    if history:
        conn.execute(insert(order_status_history), list(history))


def transition(
    conn: Connection,
    order_id: str,
    *,
    version: int,
    from_status: str,
    to_status: str,
    actor: str,
    **values: Any,
) -> bool:
    """Compare-and-set: move the order iff it is still at ``version``; records the history row."""
    now = clock.now()
    res = conn.execute(
        update(orders)
        .where(
            orders.c.id == order_id,
            orders.c.version == version,
            orders.c.status == from_status,
        )
        .values(status=to_status, version=version + 1, updated_at=now, **values)
    )
    if res.rowcount != 1:
        return False
    conn.execute(
        insert(order_status_history).values(
            order_id=order_id,
            seq=version + 1,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            at=now,
        )
    )
    return True
