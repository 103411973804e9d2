"""The SQL that matters for carts: the one read choke point that scopes carts to the caller,
and compare-and-set writes on the cart's version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, delete, insert, select, true, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.carts.domain import Cart
from omnicommerce.carts.models import cart_handoffs, cart_lines, carts
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal


def visible_to(actor: Principal) -> ColumnElement[bool]:
    """THE scoping rule: which carts a caller may reach. Everything else answers 404.

    A customer reaches its own carts; a key bound to a store reaches that store's carts, a key
    bound to a channel the carts currently on it; an unbound key (scopes checked by the route)
    reaches all.
    """
    if actor.is_customer:
        return carts.c.customer_id == actor.customer_id
    if actor.location is not None:
        return carts.c.location_id == actor.location
    if actor.channel is not None:
        return carts.c.channel == actor.channel
    return true()


def _cart(row: Row[Any], lines: dict[str, int] | None = None) -> Cart:
    return Cart(
        id=row.id,
        channel=row.channel,
        customer_id=row.customer_id,
        email=row.email,
        currency=row.currency,
        status=row.status,
        location_id=row.location_id,
        fulfillment=orjson.loads(row.fulfillment) if row.fulfillment else None,
        coupon_codes=tuple(orjson.loads(row.coupon_codes or "[]")),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        lines=lines or {},
    )


def get(conn: Connection, cart_id: str, *, actor: Principal | None) -> Cart | None:
    """A cart by id as ``actor`` sees it (``None`` = internal use, unscoped)."""
    cond = carts.c.id == cart_id
    if actor is not None:
        cond = and_(cond, visible_to(actor))
    row = conn.execute(select(carts).where(cond)).first()
    return None if row is None else _cart(row)


def active_for_customer(conn: Connection, customer_id: str) -> Cart | None:
    row = conn.execute(
        select(carts).where(carts.c.customer_id == customer_id, carts.c.status.in_(["open", "checking_out"]))
    ).first()
    return None if row is None else _cart(row)


def list_for_customer(
    conn: Connection, customer_id: str, *, actor: Principal, statuses: list[str]
) -> list[Cart]:
    rows = conn.execute(
        select(carts)
        .where(
            carts.c.customer_id == customer_id,
            carts.c.status.in_(statuses),
            visible_to(actor),
        )
        .order_by(carts.c.id)
    ).all()
    carts_ = [_cart(r) for r in rows]
    lines = lines_of_many(conn, [c.id for c in carts_])
    return [with_lines(c, lines.get(c.id, {})) for c in carts_]


def with_lines(cart: Cart, lines: dict[str, int]) -> Cart:
    return replace(cart, lines=lines)


def lines_of(conn: Connection, cart_id: str) -> dict[str, int]:
    return lines_of_many(conn, [cart_id]).get(cart_id, {})


def lines_of_many(conn: Connection, cart_ids: list[str]) -> dict[str, dict[str, int]]:
    if not cart_ids:
        return {}
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute(
        select(cart_lines.c.cart_id, cart_lines.c.sku, cart_lines.c.quantity)
        .where(cart_lines.c.cart_id.in_(cart_ids))
        .order_by(cart_lines.c.sku)
    )
    for r in rows:
        out.setdefault(r.cart_id, {})[r.sku] = r.quantity
    return out


def insert_cart(conn: Connection, cart: Cart) -> None:
    conn.execute(
        insert(carts).values(
            id=cart.id,
            channel=cart.channel,
            customer_id=cart.customer_id,
            email=cart.email,
            currency=cart.currency,
            status=cart.status,
            location_id=cart.location_id,
            fulfillment=_json(cart.fulfillment),
            coupon_codes=_json(list(cart.coupon_codes)),
            version=cart.version,
            created_at=cart.created_at,
            updated_at=cart.updated_at,
            expires_at=cart.expires_at,
        )
    )


def compare_and_set(
    conn: Connection, cart_id: str, *, version: int, status: str, to_status: str | None = None, **values: Any
) -> bool:
    """Apply ``values`` (and ``to_status``) and bump the version iff the cart is still at ``version``
    in ``status``.

    The UPDATE also takes the cart's row lock, serialising writers of one cart until commit.
    """
    if to_status is not None:
        values["status"] = to_status
    if "fulfillment" in values:
        values["fulfillment"] = _json(values["fulfillment"])
    if "coupon_codes" in values:
        values["coupon_codes"] = _json(list(values["coupon_codes"]))
    res = conn.execute(
        update(carts)
        .where(
            carts.c.id == cart_id,
            carts.c.version == version,
            carts.c.status == status,
        )
        .values(version=carts.c.version + 1, updated_at=clock.now(), **values)
    )
    return res.rowcount == 1


def replace_lines(
    conn: Connection, cart_id: str, before: Mapping[str, int], after: Mapping[str, int]
) -> None:
    """Write the difference between two line sets: at most one DELETE, one INSERT, one UPDATE per sku."""
    gone = [s for s in before if s not in after]
    if gone:
        conn.execute(delete(cart_lines).where(cart_lines.c.cart_id == cart_id, cart_lines.c.sku.in_(gone)))
    new = [s for s in after if s not in before]
    if new:
        now = clock.now()
        conn.execute(
            insert(cart_lines),
            [{"cart_id": cart_id, "sku": s, "quantity": after[s], "added_at": now} for s in new],
        )
    for sku in after:
        if sku in before and before[sku] != after[sku]:
            conn.execute(
                update(cart_lines)
                .where(cart_lines.c.cart_id == cart_id, cart_lines.c.sku == sku)
                .values(quantity=after[sku])
            )


def insert_handoff(conn: Connection, *, code_hash: str, cart_id: str, expires_at: datetime) -> None:
    conn.execute(
        insert(cart_handoffs).values(
            code_hash=code_hash, cart_id=cart_id, created_at=clock.now(), expires_at=expires_at
        )
    )


def claim_handoff(conn: Connection, *, code_hash: str, claimed_by: str) -> str | None:
    """Mark an unexpired, unclaimed code used (single use by one conditional UPDATE); its cart id."""
    now = clock.now()
    res = conn.execute(
        update(cart_handoffs)
        .where(
            cart_handoffs.c.code_hash == code_hash,
            cart_handoffs.c.claimed_at.is_(None),
            cart_handoffs.c.expires_at > now,
        )
        .values(claimed_at=now, claimed_by=claimed_by)
    )
    if res.rowcount != 1:
        return None
    return conn.execute(
        select(cart_handoffs.c.cart_id).where(cart_handoffs.c.code_hash == code_hash)
    ).scalar_one()


def get_handoff(conn: Connection, code_hash: str) -> Row[Any] | None:
    return conn.execute(select(cart_handoffs).where(cart_handoffs.c.code_hash == code_hash)).first()


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
