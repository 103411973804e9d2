"""The SQL that matters for orders: the one read choke point scoping orders to the caller,
multi-row inserts, and the compare-and-set on the order's version.

Orders are read with their lines in one statement (a join); an order's status history is a JSON
column on its row, written with it and extended by the UPDATE that changes the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, bindparam, insert, literal, or_, select, text, true, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.orders.domain import Order, OrderLine, OrderRefund, Payment, Status, StatusChange
from omnicommerce.orders.models import order_lines, order_refunds, orders
from omnicommerce.orders.models import orders as orders_table
from omnicommerce.platform import clock, direct
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.auth import reach as _scope
from omnicommerce.platform.pii import rows_where, scrub_rows


def visible_to(actor: Principal) -> ColumnElement[bool]:
    """THE scoping rule for orders: a customer its own, a store key its store's, a channel key its
    channel's, an unbound key (scopes checked by the route) all. Out of reach answers 404."""
    kind, value = _scope(actor)
    return _scoped(kind, value)


_SCOPE_COLUMNS = {
    "customer": orders.c.customer_id,
    "location": orders.c.location_id,
    "channel": orders.c.channel,
}


def _scoped(kind: str, value: Any) -> ColumnElement[bool]:
    return true() if kind == "all" else _SCOPE_COLUMNS[kind] == value


def get(conn: Connection, order_id: str, *, actor: Principal | None) -> Order | None:
    kind, value = _scope(actor)
    if kind == "all" or value is not None:  # the statement built once for this scope
        params = {"p_id": order_id} if kind == "all" else {"p_id": order_id, "p_scope": value}
        found = _orders(direct.execute(conn, _GET[kind], params))
    else:
        found = _load(conn, orders.c.id == order_id, _scoped(kind, value))
    return found[0] if found else None


def by_cart(conn: Connection, cart_id: str) -> Order | None:
    found = _load(conn, orders.c.cart_id == cart_id)
    return found[0] if found else None


def search(
    conn: Connection,
    actor: Principal,
    *,
    channel: str | None,
    customer_ids: Sequence[str] | None,
    status: str | None,
    since: datetime | None,
    before_id: str | None,
    limit: int,
) -> list[Order]:
    """Newest first; ``limit`` rows (callers ask for one more to know whether a page follows)."""
    conds: list[ColumnElement[bool]] = [visible_to(actor)]
    if channel is not None:
        conds.append(orders.c.channel == channel)
    if customer_ids is not None:
        conds.append(orders.c.customer_id.in_(list(customer_ids)))
    if status is not None:
        conds.append(orders.c.status == status)
    if since is not None:
        conds.append(orders.c.placed_at >= since)
    if before_id is not None:
        conds.append(orders.c.id < before_id)
    return _load(conn, *conds, limit=limit)


_LINE_COLUMNS = [c.label(f"line_{c.name}") for c in order_lines.c if c.name != "order_id"]


def _select(*conds: ColumnElement[bool], limit: int | None = None) -> Any:
    """Orders matching ``conds`` (newest first; the ``limit`` newest), with their lines: one query."""
    picked = select(orders).where(*conds)
    if limit is not None:
        picked = picked.order_by(orders.c.id.desc()).limit(limit)
    o = picked.subquery("o")
    return (
        select(o, *_LINE_COLUMNS)
        .outerjoin(order_lines, order_lines.c.order_id == o.c.id)
        .order_by(o.c.id.desc(), order_lines.c.line_no)
    )


_GET = {
    kind: _select(orders.c.id == bindparam("p_id"), _scoped(kind, bindparam("p_scope", type_=String)))
    for kind in ("all", *_SCOPE_COLUMNS)
}


def _load(conn: Connection, *conds: ColumnElement[bool], limit: int | None = None) -> list[Order]:
    """Orders matching ``conds`` (newest first; the ``limit`` newest), with their lines: one query."""
    return _orders(conn.execute(_select(*conds, limit=limit)))


def _orders(rows: Any) -> list[Order]:
    heads: dict[str, Row[Any]] = {}
    lines: dict[str, list[OrderLine]] = {}
    for r in rows:
        heads.setdefault(r.id, r)
        if r.line_line_no is not None:
            lines.setdefault(r.id, []).append(
                OrderLine(
                    sku=r.line_sku,
                    name=r.line_name,
                    quantity=r.line_quantity,
                    unit_price=r.line_unit_price,
                    subtotal=r.line_subtotal,
                    discount=r.line_discount,
                    total=r.line_total,
                    adjustments=orjson.loads(r.line_adjustments),
                )
            )
    return [_order(r, lines.get(order_id, [])) for order_id, r in heads.items()]


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
        refunded_total=r.refunded_total,
        history=tuple(
            StatusChange(
                h["seq"], h["from_status"], h["to_status"], h["actor"], datetime.fromisoformat(h["at"])
            )
            for h in orjson.loads(r.status_history)
        ),
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
        "status_history": _history(o.history),
        "placed_at": o.placed_at,
        "created_at": o.created_at,
        "updated_at": o.created_at,
        "refunded_total": o.refunded_total,
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


def insert_orders(conn: Connection, batch: Sequence[Order], *, source: str) -> None:
    """Orders (with their history) and their lines: two multi-row INSERTs whatever the size —
    one statement for a single order on PostgreSQL (the checkout's)."""
    if len(batch) == 1 and conn.dialect.name == "postgresql":
        lines = line_rows(batch[0])
        arrays = {f"l_{c.name}": [ln[c.name] for ln in lines] for c in order_lines.c}
        direct.execute(conn, _INSERT_ORDER_WITH_LINES, order_row(batch[0], source=source) | arrays)
        return
    direct.execute(conn, _INSERT_ORDERS, [order_row(o, source=source) for o in batch])
    lines = [row for o in batch for row in line_rows(o)]
    if lines:
        direct.execute(conn, _INSERT_LINES, lines)


_INSERT_ORDERS = insert(orders)  # built once; the rows come as execute parameters
_INSERT_LINES = insert(order_lines)


def _order_with_lines() -> Any:
    """PostgreSQL: the order's INSERT as a CTE, its lines from ``unnest`` of one array per column
    (``l_<column>``): the same statement for 1 or 100 lines."""
    array_type = {"VARCHAR": "text[]", "TEXT": "text[]", "INTEGER": "int[]", "BIGINT": "bigint[]"}
    columns = ", ".join(c.name for c in orders.c)
    values = ", ".join(f":{c.name}" for c in orders.c)
    line_columns = ", ".join(c.name for c in order_lines.c)
    arrays = ", ".join(f"CAST(:l_{c.name} AS {array_type[str(c.type).split('(')[0]]})" for c in order_lines.c)
    return text(
        f"WITH o AS (INSERT INTO orders ({columns}) VALUES ({values}))\n"
        f"INSERT INTO order_lines ({line_columns}) SELECT * FROM unnest({arrays})"
    )


_INSERT_ORDER_WITH_LINES = _order_with_lines()


def transition(
    conn: Connection, order: Order, *, to_status: str, actor: str, **values: Any
) -> StatusChange | None:
    """Compare-and-set: move the order iff it is still at its version and status, appending the
    step to its history in the same UPDATE. ``None`` when another change came first."""
    change = StatusChange(order.version + 1, order.status, to_status, actor, clock.now())
    res = conn.execute(
        update(orders)
        .where(orders.c.id == order.id, orders.c.version == order.version, orders.c.status == order.status)
        .values(
            status=to_status,
            version=order.version + 1,
            updated_at=change.at,
            status_history=_history([*order.history, change]),
            **values,
        )
    )
    return change if res.rowcount == 1 else None


def _history(history: Sequence[StatusChange]) -> str:
    return orjson.dumps(
        [
            {
                "seq": h.seq,
                "from_status": h.from_status,
                "to_status": h.to_status,
                "actor": h.actor,
                "at": h.at.isoformat(),
            }
            for h in history
        ]
    ).decode()


# --- the refund ledger ---------------------------------------------------------------------------


def refund_position(conn: Connection, order_id: str, key: str) -> tuple[int, int, OrderRefund | None] | None:
    """(total, refunded so far, the entry recorded under ``key`` if any) of the order; None when
    there is no such order. One statement."""
    entry = order_refunds.alias("entry")
    row = conn.execute(
        select(orders.c.total, orders.c.refunded_total, entry)
        .outerjoin(entry, (entry.c.order_id == orders.c.id) & (entry.c.idempotency_key == key))
        .where(orders.c.id == order_id)
    ).first()
    if row is None:
        return None
    return int(row.total), int(row.refunded_total), _refund(row) if row.id is not None else None


def add_refunded(conn: Connection, order_id: str, *, seen: int, amount: int) -> bool:
    """THE conditional write that keeps refunds within the capture: the order's running total
    moves from ``seen`` by ``amount`` only if nobody moved it meanwhile and it stays within the
    order's total (a CHECK constraint stands behind it). On PostgreSQL a concurrent recorder waits
    for the row lock, then finds ``seen`` stale and changes nothing; SQLite serialises writers."""
    res = conn.execute(
        update(orders)
        .where(
            orders.c.id == order_id,
            orders.c.refunded_total == seen,
            orders.c.refunded_total + amount <= orders.c.total,
        )
        .values(refunded_total=orders.c.refunded_total + amount)
    )
    return res.rowcount == 1


def insert_refund(conn: Connection, refund: OrderRefund) -> None:
    conn.execute(
        insert(order_refunds).values(
            id=refund.id,
            order_id=refund.order_id,
            amount=refund.amount,
            reason=refund.reason,
            idempotency_key=refund.key,
            actor=refund.actor,
            created_at=refund.created_at,
        )
    )


def stranded_balance_claims(conn: Connection, *, before: datetime, limit: int) -> list[OrderRefund]:
    """Claims of an order's balance (its own refund or cancel, keyed ``balance:<order>``) made
    before ``before`` whose order is still neither refunded nor cancelled: the step after the
    claim — the provider call, then the order's move — never finished. Oldest first."""
    rows = conn.execute(
        select(order_refunds)
        .join(orders, orders.c.id == order_refunds.c.order_id)
        .where(
            order_refunds.c.idempotency_key == literal("balance:") + orders.c.id,
            order_refunds.c.created_at < before,
            orders.c.status.not_in([Status.REFUNDED.value, Status.CANCELLED.value]),
        )
        .order_by(order_refunds.c.created_at)
        .limit(limit)
    )
    return [_refund(r) for r in rows]


def refunds_of(conn: Connection, order_id: str) -> list[OrderRefund]:
    rows = conn.execute(
        select(order_refunds).where(order_refunds.c.order_id == order_id).order_by(order_refunds.c.id)
    )
    return [_refund(r) for r in rows]


def _refund(r: Row[Any]) -> OrderRefund:
    return OrderRefund(
        id=r.id,
        order_id=r.order_id,
        amount=int(r.amount),
        reason=r.reason,
        key=r.idempotency_key,
        actor=r.actor,
        created_at=r.created_at,
    )


# --- privacy requests (found by name by customers.privacy) ---------------------------------------


def _orders_of(subject: Subject) -> ColumnElement[bool]:
    return or_(orders_table.c.customer_id.in_(subject.customer_ids), orders_table.c.email.in_(subject.emails))


def customer_rows(conn: Connection, subject: Subject) -> list[dict[str, Any]]:
    """The person's orders (placed by them, or as a guest under their email) with their lines."""
    found = rows_where(conn, orders_table, _orders_of(subject))
    lines = rows_where(conn, order_lines, order_lines.c.order_id.in_([o["id"] for o in found]))
    by_order: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_order.setdefault(line["order_id"], []).append(line)
    return [{**o, "lines": sorted(by_order.get(o["id"], []), key=lambda ln: ln["line_no"])} for o in found]


def erase_customer_pii(conn: Connection, subject: Subject) -> int:
    """Email and delivery address out of the person's orders. The financial record stays: amounts,
    SKUs, quantities, dates, payment reference and status history (which names no person)."""
    return scrub_rows(
        conn,
        orders_table,
        _orders_of(subject),
        clear=("email",),
        documents=("fulfillment",),
        terms=subject.terms,
        bump_version=True,
    )
