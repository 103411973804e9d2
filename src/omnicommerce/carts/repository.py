"""The SQL that matters for carts: the one read choke point that scopes carts to the caller,
and compare-and-set writes on the cart's version.

A cart row carries its lines (JSON), so reading a cart is one statement and every change is one
``UPDATE … WHERE id = :id AND version = :v``: zero rows means someone else changed it first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, and_, bindparam, insert, or_, select, true, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.carts.domain import CHECKING_OUT, OPEN, Cart, Line
from omnicommerce.carts.models import cart_handoffs, carts
from omnicommerce.carts.models import carts as carts_table
from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.platform import clock, direct
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.auth import reach as _scope
from omnicommerce.platform.db import DIALECTS, conflict_insert
from omnicommerce.platform.pii import rows_where, scrub_rows


def visible_to(actor: Principal) -> ColumnElement[bool]:
    """THE scoping rule: which carts a caller may reach. Everything else answers 404.

    A customer reaches its own carts; a key bound to a store reaches that store's carts, a key
    bound to a channel the carts currently on it; an unbound key (scopes checked by the route)
    reaches all.
    """
    kind, value = _scope(actor)
    return _scoped(kind, value)


_SCOPE_COLUMNS = {
    "customer": carts.c.customer_id,
    "location": carts.c.location_id,
    "channel": carts.c.channel,
}


def _scoped(kind: str, value: Any) -> ColumnElement[bool]:
    return true() if kind == "all" else _SCOPE_COLUMNS[kind] == value


def _prebuilt(
    statements: dict[str, Any], actor: Principal | None, params: dict[str, Any]
) -> tuple[Any, dict[str, Any]] | None:
    """The statement built once for ``actor``'s scope, with its parameters; ``None`` when the
    scope compares with NULL (the caller then builds the statement with :func:`visible_to`)."""
    kind, value = _scope(actor)
    if kind == "all":
        return statements[kind], params
    if value is None:
        return None
    return statements[kind], params | {"p_scope": value}


def _per_scope(build: Any) -> dict[str, Any]:
    """``build(scope condition)`` for every kind of scope, the value a bound parameter ``p_scope``."""
    return {
        kind: build(_scoped(kind, bindparam("p_scope", type_=String))) for kind in ("all", *_SCOPE_COLUMNS)
    }


def _cart(row: Row[Any]) -> Cart:
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
        lines=tuple(
            Line(d["sku"], d["quantity"], d["name"], tuple(d.get("category_ids", ())))
            for d in orjson.loads(row.lines or "[]")
        ),
    )


def _first(conn: Connection, stmt: Any, params: dict[str, Any] | None = None) -> Cart | None:
    row = conn.execute(stmt, params).first()
    return None if row is None else _cart(row)


def _first_prebuilt(conn: Connection, stmt: Any, params: dict[str, Any]) -> Cart | None:
    """:func:`_first` for a statement built once: straight to the driver (platform.direct)."""
    row = direct.execute(conn, stmt, params).first()
    return None if row is None else _cart(row)


# --- reading -----------------------------------------------------------------------------------


def get(conn: Connection, cart_id: str, *, actor: Principal | None) -> Cart | None:
    """A cart with its lines, as ``actor`` sees it (``None`` = internal use, unscoped)."""
    if (found := _prebuilt(_GET, actor, {"p_id": cart_id})) is not None:
        return _first_prebuilt(conn, *found)
    assert actor is not None
    return _first(conn, select(carts).where(carts.c.id == cart_id, visible_to(actor)))


_GET = _per_scope(lambda scope: select(carts).where(carts.c.id == bindparam("p_id"), scope))


def active_for_customer(conn: Connection, customer_id: str) -> Cart | None:
    return _first(
        conn,
        select(carts).where(carts.c.customer_id == customer_id, carts.c.status.in_([OPEN, CHECKING_OUT])),
    )


def list_for_customer(
    conn: Connection, customer_ids: list[str], *, actor: Principal, statuses: list[str]
) -> list[Cart]:
    rows = conn.execute(
        select(carts)
        .where(carts.c.customer_id.in_(customer_ids), carts.c.status.in_(statuses), visible_to(actor))
        .order_by(carts.c.id)
    ).all()
    return [_cart(r) for r in rows]


# --- writing -----------------------------------------------------------------------------------


def insert_open(conn: Connection, cart: Cart) -> Cart | None:
    """Insert a new cart unless its customer already has an active one (``None`` then): one
    ``INSERT … ON CONFLICT DO NOTHING RETURNING``; the partial unique index
    ``uq_carts_active_customer`` decides, so racing requests cannot open two."""
    params = {
        "id": cart.id,
        "channel": cart.channel,
        "customer_id": cart.customer_id,
        "email": cart.email,
        "currency": cart.currency,
        "status": cart.status,
        "location_id": cart.location_id,
        "version": cart.version,
        "created_at": cart.created_at,
        "updated_at": cart.updated_at,
        "expires_at": cart.expires_at,
        **_encode({"lines": cart.lines, "fulfillment": cart.fulfillment, "coupon_codes": cart.coupon_codes}),
    }
    row = direct.execute(conn, _INSERT_OPEN[conn.dialect.name], params).first()
    return None if row is None else _cart(row)


# Built once per dialect; the values come as execute parameters.
_INSERT_OPEN = {d: conflict_insert(carts, d).on_conflict_do_nothing().returning(*carts.c) for d in DIALECTS}


def compare_and_set(
    conn: Connection,
    cart_id: str,
    *,
    version: int,
    status: str,
    to_status: str | None = None,
    bump: bool = True,
    **values: Any,
) -> bool:
    """Apply ``values`` (and ``to_status``) iff the cart is still at ``version`` in ``status``;
    the version goes up by one unless ``bump=False`` (a write by the transaction that already
    moved it). ``lines``, ``fulfillment`` and ``coupon_codes`` are given as domain values.

    The UPDATE also takes the cart's row lock, serialising writers of one cart until commit.
    """
    if to_status is not None:
        values["status"] = to_status
    params = {"p_id": cart_id, "p_version": version, "p_status": status, "updated_at": clock.now()}
    res = direct.execute(conn, _COMPARE_AND_SET[bump], params | _encode(values))
    return res.rowcount == 1


# Built once, with and without the version bump; the new values come as execute parameters.
_COMPARE_AND_SET = {
    bump: update(carts)
    .where(
        carts.c.id == bindparam("p_id"),
        carts.c.version == bindparam("p_version"),
        carts.c.status == bindparam("p_status"),
    )
    .values({carts.c.version: carts.c.version + 1} if bump else {})
    for bump in (True, False)
}


def ship_in_place(
    conn: Connection, cart_id: str, *, actor: Principal, fulfillment: dict[str, Any]
) -> Cart | None:
    """Ship an open cart to an address in one ``UPDATE … RETURNING`` when that leaves its holds
    where they are: it already ships, it ships from anywhere (no store, no fulfillment yet), or it
    holds nothing. ``None``: not reachable, not open, or its holds would move — take the long way.
    """
    params = {"p_id": cart_id, "p_now": clock.now(), **_encode({"fulfillment": fulfillment})}
    if (found := _prebuilt(_SHIP_IN_PLACE, actor, params)) is not None:
        return _first_prebuilt(conn, *found)
    return _first(conn, _ship_in_place(visible_to(actor)), params)


def _ship_in_place(scope: ColumnElement[bool]) -> Any:
    holds_stay = or_(
        carts.c.fulfillment_type == "ship",
        and_(carts.c.fulfillment_type.is_(None), carts.c.location_id.is_(None)),
        carts.c.lines == "[]",
    )
    return (
        update(carts)
        .where(carts.c.id == bindparam("p_id"), carts.c.status == OPEN, scope, holds_stay)
        .values(version=carts.c.version + 1, updated_at=bindparam("p_now", type_=carts.c.updated_at.type))
        .returning(*carts.c)
    )


_SHIP_IN_PLACE = _per_scope(_ship_in_place)


def claim_for_checkout(conn: Connection, cart_id: str, *, actor: Principal) -> Cart | None:
    """``open`` → ``checking_out`` (version + 1) in one ``UPDATE … RETURNING``: loads the cart
    and takes it for this checkout attempt. ``None``: not reachable, or not open."""
    params = {"p_id": cart_id, "p_now": clock.now()}
    if (found := _prebuilt(_CLAIM, actor, params)) is not None:
        return _first_prebuilt(conn, *found)
    return _first(conn, _claim(visible_to(actor)), params)


def _claim(scope: ColumnElement[bool]) -> Any:
    return (
        update(carts)
        .where(carts.c.id == bindparam("p_id"), carts.c.status == OPEN, scope)
        .values(
            status=CHECKING_OUT,
            version=carts.c.version + 1,
            updated_at=bindparam("p_now", type_=carts.c.updated_at.type),
        )
        .returning(*carts.c)
    )


_CLAIM = _per_scope(_claim)


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "lines" in out:
        out["lines"] = _json([_line(ln) for ln in out["lines"]])
    if "fulfillment" in out:
        f = out["fulfillment"]
        out["fulfillment"] = _json(f)
        out["fulfillment_type"] = None if f is None else f["type"]
    if "coupon_codes" in out:
        out["coupon_codes"] = _json(list(out["coupon_codes"]))
    return out


def _line(ln: Line) -> dict[str, Any]:
    return {"sku": ln.sku, "quantity": ln.quantity, "name": ln.name, "category_ids": list(ln.category_ids)}


# --- hand-off codes ----------------------------------------------------------------------------


def insert_handoff(conn: Connection, *, code_hash: str, cart_id: str, expires_at: datetime) -> None:
    conn.execute(
        insert(cart_handoffs).values(
            code_hash=code_hash, cart_id=cart_id, created_at=clock.now(), expires_at=expires_at
        )
    )


def claim_handoff(conn: Connection, *, code_hash: str, claimed_by: str) -> str | None:
    """Mark an unexpired, unclaimed code used (single use by one conditional UPDATE); its cart id."""
    now = clock.now()
    cart_id = conn.execute(
        update(cart_handoffs)
        .where(
            cart_handoffs.c.code_hash == code_hash,
            cart_handoffs.c.claimed_at.is_(None),
            cart_handoffs.c.expires_at > now,
        )
        .values(claimed_at=now, claimed_by=claimed_by)
        .returning(cart_handoffs.c.cart_id)
    ).scalar()
    return None if cart_id is None else str(cart_id)


def get_handoff(conn: Connection, code_hash: str) -> Row[Any] | None:
    return conn.execute(select(cart_handoffs).where(cart_handoffs.c.code_hash == code_hash)).first()


# --- helpers -----------------------------------------------------------------------------------


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def stalled_in_checkout(conn: Connection, *, updated_before: datetime, limit: int) -> list[Cart]:
    """Carts ``checking_out`` or ``voiding`` untouched since ``updated_before``, oldest first."""
    stmt = (
        select(carts)
        .where(carts.c.status.in_(["checking_out", "voiding"]), carts.c.updated_at < updated_before)
        .order_by(carts.c.updated_at)
        .limit(limit)
    )
    return [_cart(row) for row in conn.execute(stmt)]


# --- privacy requests (found by name by customers.privacy) ---------------------------------------


def _carts_of(subject: Subject) -> ColumnElement[bool]:
    return or_(carts_table.c.customer_id.in_(subject.customer_ids), carts_table.c.email.in_(subject.emails))


def customer_rows(conn: Connection, subject: Subject) -> list[dict[str, Any]]:
    """The person's carts (theirs, or guest carts under their email), as stored."""
    return rows_where(conn, carts_table, _carts_of(subject))


def erase_customer_pii(conn: Connection, subject: Subject) -> int:
    """Email and delivery address out of the person's carts; lines, coupons and ids stay. The
    version moves, so a request holding the old cart cannot write the address back."""
    return scrub_rows(
        conn,
        carts_table,
        _carts_of(subject),
        clear=("email",),
        documents=("fulfillment",),
        terms=subject.terms,
        bump_version=True,
    )
